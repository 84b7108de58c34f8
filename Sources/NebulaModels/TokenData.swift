import Foundation
import NebulaText

/// Where a model's training text came from and how it was split: recorded in the model folder
/// (`data.json`) so evaluation finds the same held-out part.
public struct DataSpec: Codable, Sendable, Equatable {
    /// How the validation part is chosen.
    public enum SplitKind: String, Codable, Sendable, CaseIterable {
        /// A seeded random subset of whole documents.
        case documents
        /// The last fraction of the token stream (nanoGPT's split of tinyshakespeare).
        case tail
    }

    public var path: String
    public var separator: CorpusOptions.Separator
    public var split: SplitKind
    public var validationFraction: Double
    public var seed: UInt64

    public init(
        path: String, separator: CorpusOptions.Separator = .endOfText, split: SplitKind = .documents,
        validationFraction: Double = 0.05, seed: UInt64 = 1337
    ) {
        self.path = path
        self.separator = separator
        self.split = split
        self.validationFraction = validationFraction
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case path, separator, split, validationFraction = "validation_fraction", seed
    }

    public var corpusOptions: CorpusOptions { CorpusOptions(separator: separator) }
    public var url: URL { URL(fileURLWithPath: path) }
}

extension CorpusOptions.Separator: Codable {}

/// A corpus tokenized and split into training and validation token streams, plus the held-out text.
public struct TokenSplits {
    public var train: [Int32]
    public var validation: [Int32]
    /// The held-out documents as text (for the next-word test and reconstruction metrics).
    public var validationDocuments: [String]
    /// The training documents as text (for memorization checks and passage batches).
    public var trainDocuments: [String]

    /// Tokenizes `spec`'s corpus (through a token cache in `cacheDirectory`, rebuilt when stale) and splits it.
    public init(spec: DataSpec, tokenizer: any Tokenizer, cacheDirectory: URL, progress: ((Int) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        let fingerprint = try Corpus.fingerprint(of: spec.url, options: spec.corpusOptions)
        let cacheURL = cacheDirectory.appendingPathComponent(String(format: "%016llx-%016llx.tokens", fingerprint, tokenizer.fingerprint))
        let cache = try TokenCache.load(
            corpus: spec.url, options: spec.corpusOptions, tokenizer: tokenizer, cacheURL: cacheURL, progress: progress)
        let corpus = try Corpus(contentsOf: spec.url, options: spec.corpusOptions)
        switch spec.split {
        case .documents:
            let split = DocumentSplit(documentCount: cache.documentCount, validationFraction: spec.validationFraction, seed: spec.seed)
            train = cache.tokens(ofDocuments: split.train)
            validation = cache.tokens(ofDocuments: split.validation)
            trainDocuments = split.train.map { corpus.documents[$0] }
            validationDocuments = split.validation.map { corpus.documents[$0] }
        case .tail:
            let all = Array(cache.tokens)
            let cut = all.count - Int(Double(all.count) * spec.validationFraction)
            train = Array(all[..<cut])
            validation = Array(all[cut...])
            let text = corpus.documents.joined(separator: "\n\n")
            let characterCut = text.count - Int(Double(text.count) * spec.validationFraction)
            trainDocuments = [String(text.prefix(characterCut))]
            validationDocuments = [String(text.dropFirst(characterCut))]
        }
    }
}

/// The default place for token caches: `$NEBULA_CACHE`, else `~/.cache/nebula`.
public func defaultCacheDirectory() -> URL {
    if let custom = ProcessInfo.processInfo.environment["NEBULA_CACHE"] { return URL(fileURLWithPath: custom) }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/nebula")
}
