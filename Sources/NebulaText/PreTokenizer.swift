/// GPT-2's pre-tokenizer, hand-written over UTF-8 bytes.
///
/// It splits text into the pieces that GPT-2's regular expression
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` finds, with the
/// same Unicode classes (letters = general category L*, numbers = N*, white space = the Unicode
/// `White_Space` property). Byte-pair merges never cross a piece boundary.
///
/// The last alternatives hold the one subtlety: a run of white space followed by a non-space keeps
/// its last character for the next piece, so `"a  b"` splits as `"a"`, `" "`, `" b"`.
///
/// ```swift
/// let text = Array("Hello world's  end".utf8)
/// let pieces = text.withUnsafeBufferPointer { PreTokenizer.pieces(of: $0) }
/// // ["Hello", " world", "'s", " ", " end"] as byte ranges
/// ```
public struct PreTokenizer {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    /// A pre-tokenizer over `bytes`, which should be valid UTF-8 (as a `String`'s are).
    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The byte ranges of all pieces of `bytes`.
    public static func pieces(of bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var splitter = PreTokenizer(bytes)
        var result: [Range<Int>] = []
        while let piece = splitter.next() { result.append(piece) }
        return result
    }

    /// The byte range of the next piece, or `nil` at the end.
    @inline(__always)
    public mutating func next() -> Range<Int>? {
        let count = bytes.count
        let start = position
        guard start < count else { return nil }
        let first = bytes[start]

        // 's 't 're 've 'm 'll 'd
        if first == UInt8(ascii: "'") && start + 1 < count {
            let second = bytes[start + 1]
            switch second {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                position = start + 2
                return start..<position
            case UInt8(ascii: "r"), UInt8(ascii: "v"), UInt8(ascii: "l"):
                if start + 2 < count {
                    let third = bytes[start + 2]
                    if (second == UInt8(ascii: "l") && third == UInt8(ascii: "l"))
                        || (second != UInt8(ascii: "l") && third == UInt8(ascii: "e"))
                    {
                        position = start + 3
                        return start..<position
                    }
                }
            default: break
            }
        }

        var (kind, length) = classify(at: start)
        var runStart = start
        // An optional single space in front of a letter, number or symbol run.
        if first == 0x20 && start + 1 < count {
            let (nextKind, nextLength) = classify(at: start + 1)
            if nextKind != .space {
                kind = nextKind
                length = nextLength
                runStart = start + 1
            }
        }

        if kind != .space {
            var end = runStart + length
            while end < count {
                let (k, l) = classify(at: end)
                if k != kind { break }
                end += l
            }
            position = end
            return start..<end
        }

        // \s+(?!\S) | \s+ : a run of white space, less its last character when a non-space follows
        // and the run is longer than one character.
        var end = start + length
        var lastStart = start
        while end < count {
            let (k, l) = classify(at: end)
            if k != .space { break }
            lastStart = end
            end += l
        }
        if end < count && lastStart > start { end = lastStart }
        position = end
        return start..<end
    }

    @inline(__always)
    private func classify(at index: Int) -> (CharacterKind, Int) {
        let byte = bytes[index]
        if byte < 0x80 { return (CharacterKind.ascii[Int(byte)], 1) }
        // Decode one UTF-8 scalar. Invalid UTF-8 (which `String` never holds) cannot read past the
        // end: a stray or truncated byte counts as a one-byte symbol.
        let needed = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
        if byte < 0xC0 || index + needed > bytes.count { return (.other, 1) }
        let scalar: UInt32
        let length: Int
        if byte < 0xE0 {
            scalar = UInt32(byte & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F)
            length = 2
        } else if byte < 0xF0 {
            scalar = UInt32(byte & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6 | UInt32(bytes[index + 2] & 0x3F)
            length = 3
        } else {
            scalar =
                UInt32(byte & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
                | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F)
            length = 4
        }
        return (CharacterKind.of(scalar), length)
    }
}

/// The character classes of GPT-2's pattern.
enum CharacterKind: UInt8 {
    case letter, number, space, other

    static let ascii: [CharacterKind] = (0..<128).map { compute(UInt32($0)) }

    /// Classes of the Basic Multilingual Plane, computed once on first use.
    private static let basicPlane: [CharacterKind] = (0..<0x10000).map { compute(UInt32($0)) }

    @inline(__always)
    static func of(_ value: UInt32) -> CharacterKind {
        value < 0x10000 ? basicPlane[Int(value)] : compute(value)
    }

    private static func compute(_ value: UInt32) -> CharacterKind {
        guard let scalar = Unicode.Scalar(value) else { return .other }  // surrogates
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }
}
