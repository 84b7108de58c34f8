import Foundation
import NebulaCore

/// What every Nebula tokenizer offers the rest of the system.
///
/// ```swift
/// let tokenizer = try loadTokenizer(directory: URL(fileURLWithPath: "gpt2"))
/// let ids = try tokenizer.encode("Hello world")          // [15496, 995]
/// let text = try tokenizer.decode(ids)                    // "Hello world"
/// let withEOT = try tokenizer.encode("end<|endoftext|>", allowedSpecial: .all)
/// ```
public protocol Tokenizer: Sendable {
    /// The number of ids, special tokens included; every id is in `0..<vocabularySize`.
    var vocabularySize: Int { get }

    /// The special tokens (such as `<|endoftext|>` and `<|pad|>`) and their ids.
    var specialTokens: [String: Int] { get }

    /// A stable 64-bit hash of everything that decides the encoding; token caches record it.
    var fingerprint: UInt64 { get }

    /// The ids of `text`. Special tokens named by `allowedSpecial` become their ids; all other text,
    /// special-token look-alikes included, is encoded as ordinary text.
    func encode(_ text: String, allowedSpecial: AllowedSpecial) throws -> [Int]

    /// The ids of each text, computed on all cores.
    func encodeBatch(_ texts: [String], allowedSpecial: AllowedSpecial) throws -> [[Int]]

    /// The text of `ids`. Throws ``TokenizerError/unknownTokenID(_:)`` for an id outside the vocabulary.
    func decode(_ ids: [Int]) throws -> String
}

extension Tokenizer {
    /// The ids of `text`, with no special tokens recognised.
    public func encode(_ text: String) throws -> [Int] { try encode(text, allowedSpecial: .none) }

    public func encodeBatch(_ texts: [String], allowedSpecial: AllowedSpecial) throws -> [[Int]] {
        try Parallel.map(count: texts.count, makeState: {}) { _, index in
            try encode(texts[index], allowedSpecial: allowedSpecial)
        }
    }

    /// The id of `<|endoftext|>`, when the vocabulary has it.
    public var endOfTextID: Int? { specialTokens[SpecialToken.endOfText] }

    /// The id of `<|pad|>`, when the vocabulary has it.
    public var padID: Int? { specialTokens[SpecialToken.pad] }
}

/// The conventional special tokens.
public enum SpecialToken {
    /// Ends a document: `<|endoftext|>`.
    public static let endOfText = "<|endoftext|>"
    /// Fills a batch row after the real tokens: `<|pad|>`.
    public static let pad = "<|pad|>"
}

/// Which special tokens an encoder recognises in its input (as tiktoken's `allowed_special`).
public enum AllowedSpecial: Sendable, Equatable {
    /// None: special-token text is encoded as ordinary text.
    case none
    /// Every special token of the vocabulary.
    case all
    /// Only these.
    case only(Set<String>)

    func allows(_ token: String) -> Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .only(let set): return set.contains(token)
        }
    }
}

/// Errors of the tokenizers: one line naming the file or id, and the problem.
public enum TokenizerError: LocalizedError, Equatable {
    /// A folder holds none of the known tokenizer file sets.
    case noTokenizerFiles(directory: String)
    /// A file is missing or unreadable.
    case unreadableFile(path: String, reason: String)
    /// A file is readable but its content is wrong.
    case invalidFile(path: String, reason: String)
    /// An id outside the vocabulary was given to `decode`.
    case unknownTokenID(Int)
    /// A character outside a character tokenizer's vocabulary was given to `encode`.
    case unknownCharacter(Unicode.Scalar)
    /// Training was asked for something impossible.
    case invalidTraining(String)

    public var errorDescription: String? {
        switch self {
        case .noTokenizerFiles(let directory):
            return
                "\(directory): no tokenizer found (expected encoder.json + vocab.bpe, vocab.json + merges.txt, tokenizer.json or char_tokenizer.json)"
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .invalidFile(let path, let reason):
            return "\(path): \(reason)"
        case .unknownTokenID(let id):
            return "unknown token id \(id)"
        case .unknownCharacter(let scalar):
            return
                "character \(String(scalar).debugDescription) (U+\(String(scalar.value, radix: 16, uppercase: true))) is not in the vocabulary"
        case .invalidTraining(let reason):
            return "cannot train: \(reason)"
        }
    }
}

/// Loads the tokenizer in `directory`, whichever of Nebula's formats it holds, in this order:
/// `tokenizer.json` (Hugging Face), `vocab.json` + `merges.txt`, `encoder.json` + `vocab.bpe` (GPT-2's
/// own files), `char_tokenizer.json` (``CharTokenizer``).
///
/// ```swift
/// let gpt2 = try loadTokenizer(directory: URL(fileURLWithPath: "../shared/data/gpt2"))
/// gpt2.vocabularySize  // 50257
/// ```
public func loadTokenizer(directory: URL) throws -> any Tokenizer {
    let manager = FileManager.default
    func has(_ name: String) -> Bool { manager.fileExists(atPath: directory.appendingPathComponent(name).path) }
    if has("tokenizer.json") {
        return try ByteLevelBPE(huggingFaceFile: directory.appendingPathComponent("tokenizer.json"))
    }
    if has("vocab.json") && has("merges.txt") {
        return try ByteLevelBPE(
            vocabulary: directory.appendingPathComponent("vocab.json"),
            merges: directory.appendingPathComponent("merges.txt"))
    }
    if has("encoder.json") && has("vocab.bpe") {
        return try ByteLevelBPE(
            vocabulary: directory.appendingPathComponent("encoder.json"),
            merges: directory.appendingPathComponent("vocab.bpe"))
    }
    if has(CharTokenizer.fileName) {
        return try CharTokenizer(contentsOf: directory.appendingPathComponent(CharTokenizer.fileName))
    }
    var isDirectory: ObjCBool = false
    if !manager.fileExists(atPath: directory.path, isDirectory: &isDirectory) || !isDirectory.boolValue {
        throw TokenizerError.unreadableFile(path: directory.path, reason: "no such folder")
    }
    throw TokenizerError.noTokenizerFiles(directory: directory.path)
}
