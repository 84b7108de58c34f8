/// FNV-1a, 64-bit: a hash that is the same on every platform and every run (unlike `Hasher`),
/// for fingerprints stored in files.
struct StableHash {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
    }

    mutating func combine(_ integer: Int) {
        withUnsafeBytes(of: Int64(integer).littleEndian) { combine($0) }
    }

    mutating func combine(_ string: String) {
        combine(string.utf8.count)
        combine(string.utf8)
    }
}
