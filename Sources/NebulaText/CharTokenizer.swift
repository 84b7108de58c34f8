import Foundation
import NebulaCore

/// A character-level tokenizer, as in nanoGPT's tinyshakespeare run: the vocabulary is the sorted set
/// of the corpus's characters (Unicode scalars, as Python's `sorted(set(text))`), followed by any
/// special tokens.
///
/// ```swift
/// let chars = CharTokenizer(corpus: shakespeare)            // 65 characters
/// let ids = try chars.encode("First Citizen:")
/// try chars.save(to: outputFolder)                           // char_tokenizer.json
/// let again = try loadTokenizer(directory: outputFolder)
/// ```
public struct CharTokenizer: Tokenizer {
    /// The file name the tokenizer is saved under.
    public static let fileName = "char_tokenizer.json"

    /// The characters, in id order.
    public let characters: [Unicode.Scalar]
    public let specialTokens: [String: Int]
    public let fingerprint: UInt64
    private let idOfCharacter: [UInt32: Int]

    /// A tokenizer whose vocabulary is the characters of `corpus`, then `specialTokens` in order.
    public init(corpus: String, specialTokens: [String] = []) {
        self.init(characters: Set(corpus.unicodeScalars).sorted(), specialTokens: specialTokens)
    }

    /// A tokenizer over these characters (ids in this order), then `specialTokens` in order.
    public init(characters: [Unicode.Scalar], specialTokens: [String] = []) {
        self.characters = characters
        var specials: [String: Int] = [:]
        for name in specialTokens where specials[name] == nil { specials[name] = characters.count + specials.count }
        self.specialTokens = specials
        idOfCharacter = Dictionary(characters.enumerated().map { ($0.element.value, $0.offset) }, uniquingKeysWith: { a, _ in a })
        var hash = StableHash()
        hash.combine("char")
        for scalar in characters { hash.combine(Int(scalar.value)) }
        for (name, id) in specials.sorted(by: { $0.value < $1.value }) { hash.combine(name); hash.combine(id) }
        fingerprint = hash.value
    }

    /// Loads a tokenizer saved by ``save(to:)``.
    public init(contentsOf url: URL) throws {
        func invalid(_ reason: String) -> TokenizerError { .invalidFile(path: url.path, reason: reason) }
        guard let root = try JSONText.object(at: url) as? [String: Any], root["type"] as? String == "char",
            let characters = root["characters"] as? [String]
        else {
            throw invalid("expected {\"type\": \"char\", \"characters\": [...]}")
        }
        var scalars: [Unicode.Scalar] = []
        for character in characters {
            guard character.unicodeScalars.count == 1 else { throw invalid("\(character.debugDescription) is not one character") }
            scalars.append(character.unicodeScalars.first!)
        }
        let specials = (root["special_tokens"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
        let ordered = specials.sorted { $0.value < $1.value }
        for (offset, entry) in ordered.enumerated() where entry.value != scalars.count + offset {
            throw invalid("special token \(entry.key) must have id \(scalars.count + offset)")
        }
        self.init(characters: scalars, specialTokens: ordered.map(\.key))
    }

    public var vocabularySize: Int { characters.count + specialTokens.count }

    public func encode(_ text: String, allowedSpecial: AllowedSpecial) throws -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count)
        func encodeOrdinary(_ scalars: String.UnicodeScalarView) throws {
            for scalar in scalars {
                guard let id = idOfCharacter[scalar.value] else { throw TokenizerError.unknownCharacter(scalar) }
                ids.append(id)
            }
        }
        let matcher = SpecialTokenMatcher(specialTokens: specialTokens, allowed: allowedSpecial)
        if matcher.isEmpty {
            try encodeOrdinary(text.unicodeScalars)
            return ids
        }
        var text = text
        try text.withUTF8 { bytes in
            for segment in matcher.segments(of: bytes) {
                if let special = segment.special {
                    ids.append(special)
                } else {
                    try encodeOrdinary(String(decoding: UnsafeBufferPointer(rebasing: bytes[segment.range]), as: UTF8.self).unicodeScalars)
                }
            }
        }
        return ids
    }

    public func decode(_ ids: [Int]) throws -> String {
        let specialByID = Dictionary(uniqueKeysWithValues: specialTokens.map { ($0.value, $0.key) })
        var text = String.UnicodeScalarView()
        for id in ids {
            if id >= 0 && id < characters.count {
                text.append(characters[id])
            } else if let special = specialByID[id] {
                text.append(contentsOf: special.unicodeScalars)
            } else {
                throw TokenizerError.unknownTokenID(id)
            }
        }
        return String(text)
    }

    /// Writes `char_tokenizer.json` into `directory` (created if needed), atomically.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let characterList = characters.map { jsonQuoted(String($0)) }.joined(separator: ", ")
        let specialList = specialTokens.sorted { $0.value < $1.value }
            .map { "\(jsonQuoted($0.key)): \($0.value)" }.joined(separator: ", ")
        let json = "{\n  \"type\": \"char\",\n  \"characters\": [\(characterList)],\n  \"special_tokens\": {\(specialList)}\n}\n"
        let url = directory.appendingPathComponent(Self.fileName)
        do { try Data(json.utf8).write(to: url, options: .atomic) } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
