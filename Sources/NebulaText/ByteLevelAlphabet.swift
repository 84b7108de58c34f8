/// GPT-2's reversible map between the 256 byte values and 256 printable Unicode characters.
///
/// Byte-level BPE files (`encoder.json`, `vocab.json`, `merges.txt`, `tokenizer.json`) spell every
/// token as a string of these characters, so that a token made of arbitrary bytes (a lone UTF-8
/// continuation byte, a control character) is still a printable JSON string. Printable Latin-1
/// bytes map to themselves; the 68 others map to U+0100 and up, in byte order.
///
/// ```swift
/// ByteLevelAlphabet.character(for: 0x20)   // "Ġ"
/// ByteLevelAlphabet.bytes(of: "Ġhello")    // [0x20, 0x68, 0x65, 0x6C, 0x6C, 0x6F]
/// ```
public enum ByteLevelAlphabet {
    /// The bytes in GPT-2's vocabulary order: the printable ones first, then the rest.
    /// A trained vocabulary gives byte `order[i]` the id `i`, as GPT-2 does.
    public static let order: [UInt8] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let rest = (0...255).filter { !printable.contains($0) }
        return (printable + rest).map { UInt8($0) }
    }()

    /// The character that spells each byte value.
    public static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for byte in 0...255 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(256 + extra)!
                extra += 1
            }
        }
        return table
    }()

    private static let byteOfCharacter: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in characters.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    /// The character that spells `byte`.
    public static func character(for byte: UInt8) -> Unicode.Scalar { characters[Int(byte)] }

    /// The token string of a byte sequence, e.g. `[0x20, 0x61]` → `"Ġa"`.
    public static func string(of bytes: some Sequence<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characters[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a token string stands for, or `nil` when it holds a character outside the alphabet.
    public static func bytes(of token: String) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byteOfCharacter[scalar.value] else { return nil }
            result.append(byte)
        }
        return result
    }
}
