/// FNV-1a, 64-bit: a hash that is the same on every platform and every run (unlike `Hasher`), for fingerprints
/// stored in files (a tokenizer's, a corpus's, the weights and passages a latent cache was made from).
///
/// ```swift
/// var hash = StableHash()
/// hash.combine("vocab")
/// hash.combine(4096)
/// let key = hash.value
/// ```
public struct StableHash: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
    }

    /// Combines the array's elements' bytes, in order.
    public mutating func combine<Element: BitwiseCopyable>(elementsOf array: [Element]) {
        array.withUnsafeBytes { combine($0) }
    }

    /// Combines the integer as 8 little-endian bytes.
    public mutating func combine(_ integer: Int) {
        withUnsafeBytes(of: Int64(integer).littleEndian) { combine($0) }
    }

    /// Combines the string's UTF-8 length, then its bytes (so "ab"+"c" and "a"+"bc" differ).
    public mutating func combine(_ string: String) {
        combine(string.utf8.count)
        combine(string.utf8)
    }
}

/// The ``StableHash`` of the arrays' bytes, in order (no lengths between them).
public func fnv1aHash<Element: BitwiseCopyable>(_ arrays: [[Element]]) -> UInt64 {
    var hash = StableHash()
    for array in arrays { hash.combine(elementsOf: array) }
    return hash.value
}
