import Foundation
import NebulaCore

/// A language-model batch: `x` holds `batchSize` windows of `contextLength` tokens, `y` the same
/// windows shifted by one (the next-token targets). Both are row-major `[batchSize, contextLength]`.
public struct LMBatch: Sendable, Equatable {
    public let x: [Int32]
    public let y: [Int32]
    public let batchSize: Int
    public let contextLength: Int
}

/// Random contiguous windows of a token stream, for next-token training (nanoGPT's `get_batch`).
///
/// ```swift
/// var batcher = try LMBatcher(tokens: trainTokens, batchSize: 12, contextLength: 64, seed: 1337)
/// let batch = batcher.next()   // batch.x, batch.y: [12 * 64] Int32, shape [12, 64]
/// ```
public struct LMBatcher<Tokens: RandomAccessCollection & Sendable>: Sendable where Tokens.Element == Int32, Tokens.Index == Int {
    public let tokens: Tokens
    public let batchSize: Int
    public let contextLength: Int
    private var random: SeededRandom

    /// Throws ``BatchError`` when the stream is shorter than one window plus its target.
    public init(tokens: Tokens, batchSize: Int, contextLength: Int, seed: UInt64) throws {
        guard batchSize > 0, contextLength > 0 else { throw BatchError.invalid("batch size and context length must be positive") }
        guard tokens.count > contextLength else {
            throw BatchError.invalid("\(tokens.count) tokens are too few for a context of \(contextLength)")
        }
        self.tokens = tokens
        self.batchSize = batchSize
        self.contextLength = contextLength
        random = SeededRandom(seed: seed)
    }

    /// The next batch of windows, each starting at a uniformly random position.
    public mutating func next() -> LMBatch {
        var x: [Int32] = [], y: [Int32] = []
        x.reserveCapacity(batchSize * contextLength)
        y.reserveCapacity(batchSize * contextLength)
        let base = tokens.startIndex
        for _ in 0..<batchSize {
            let start = base + random.next(below: tokens.count - contextLength)
            x.append(contentsOf: tokens[start..<start + contextLength])
            y.append(contentsOf: tokens[start + 1..<start + contextLength + 1])
        }
        return LMBatch(x: x, y: y, batchSize: batchSize, contextLength: contextLength)
    }
}

/// A piece of a document of at most `maxLength` tokens, cut at sentence boundaries.
public struct Passage: Sendable, Equatable {
    public let tokens: [Int32]
    /// The document it comes from.
    public let document: Int
    /// Its position among that document's passages.
    public let index: Int

    public init(tokens: [Int32], document: Int = 0, index: Int = 0) {
        self.tokens = tokens
        self.document = document
        self.index = index
    }
}

/// Passages in a batch: `tokens` padded to `length` with the pad id, `mask` 1 on real tokens and 0
/// on padding; both row-major `[batchSize, length]`.
public struct PassageBatch: Sendable, Equatable {
    public let tokens: [Int32]
    public let mask: [Float]
    public let batchSize: Int
    public let length: Int

    /// Pads `passages` into one batch.
    public init(_ passages: [Passage], length: Int, padID: Int32) {
        var tokens: [Int32] = [], mask: [Float] = []
        tokens.reserveCapacity(passages.count * length)
        mask.reserveCapacity(passages.count * length)
        for passage in passages {
            let real = passage.tokens.prefix(length)
            tokens.append(contentsOf: real)
            tokens.append(contentsOf: repeatElement(padID, count: length - real.count))
            mask.append(contentsOf: repeatElement(1, count: real.count))
            mask.append(contentsOf: repeatElement(0, count: length - real.count))
        }
        self.tokens = tokens
        self.mask = mask
        self.batchSize = passages.count
        self.length = length
    }
}

/// Two aligned passage batches: row `i` of `next` follows row `i` of `first` in the same document.
public struct PassagePairBatch: Sendable, Equatable {
    public let first: PassageBatch
    public let next: PassageBatch
}

/// Passages for the latent autoencoder and the conditional denoiser: documents cut at sentence
/// boundaries into chunks of at most `maxLength` tokens (a longer sentence is cut every
/// `maxLength` tokens), packed one after another or as windows starting at every sentence (whole
/// sentences, or exactly `maxLength` tokens), served
/// in random order, alone or as (passage, following passage) pairs.
///
/// ```swift
/// var passages = try PassageBatcher(documents: stories, tokenizer: tokenizer, maxLength: 64, seed: 7)
/// let batch = passages.next(batchSize: 32)        // tokens, mask: [32 * 64]
/// let pairs = passages.nextPairs(batchSize: 32)   // pairs.first, pairs.next
/// ```
public struct PassageBatcher: Sendable {
    public let passages: [Passage]
    /// Indices into `passages` of each (passage, next passage of the same document) pair.
    public let pairs: [(first: Int, next: Int)]
    public let maxLength: Int
    public let padID: Int32
    private var random: SeededRandom
    private var order: [Int] = []
    private var pairOrder: [Int] = []

    /// Where passages start in a document.
    public enum Starts: String, Sendable, CaseIterable {
        /// One after another: each document is cut once into non-overlapping passages.
        case packed
        /// At every sentence: overlapping windows of whole sentences, several times more passages
        /// from the same text (for training; a window's `index` is its first sentence).
        case everySentence = "every-sentence"
        /// At every sentence, exactly `maxLength` tokens running across sentence ends: no padding, so
        /// no passage ends early (a document's last `maxLength - 1` tokens start none).
        case fixed
    }

    /// Cuts `documents` into passages with `tokenizer`. The pad id defaults to the tokenizer's
    /// `<|pad|>`, else `<|endoftext|>`, else 0.
    public init(
        documents: [String], tokenizer: any Tokenizer, maxLength: Int = 64, padID: Int? = nil,
        starts: Starts = .packed, seed: UInt64
    ) throws {
        guard maxLength > 0 else { throw BatchError.invalid("maxLength must be positive") }
        let sentences = documents.map { SentenceSplitter.sentences(in: $0).map(String.init) }
        let encoded = try tokenizer.encodeBatch(sentences.flatMap { $0 }, allowedSpecial: .none)
        var passages: [Passage] = []
        var pairs: [(first: Int, next: Int)] = []
        var cursor = 0
        for (document, documentSentences) in sentences.enumerated() {
            let text = encoded[cursor..<cursor + documentSentences.count]
            cursor += documentSentences.count
            switch starts {
            case .packed:
                for (index, piece) in Self.pack(text, maxLength: maxLength).enumerated() {
                    if index > 0 { pairs.append((passages.count - 1, passages.count)) }
                    passages.append(Passage(tokens: piece, document: document, index: index))
                }
            case .everySentence:
                // Window s holds sentences s..<end(s); its following passage is window end(s).
                var windowAt: [Int: Int] = [:], ends: [(window: Int, end: Int)] = []
                for s in text.indices where !text[s].isEmpty {
                    var end = s, length = 0
                    while end < text.endIndex && length + text[end].count <= maxLength { length += text[end].count; end += 1 }
                    end = max(end, s + 1)  // a sentence over maxLength: its first chunk
                    guard let piece = Self.pack(text[s..<end], maxLength: maxLength).first else { continue }
                    windowAt[s] = passages.count
                    ends.append((passages.count, end))
                    passages.append(Passage(tokens: piece, document: document, index: s - text.startIndex))
                }
                pairs += ends.compactMap { pair in windowAt[pair.end].map { (pair.window, $0) } }
            case .fixed:
                // Window s holds the maxLength tokens from sentence s on; its following passage is the window
                // at the first sentence that starts after it ends.
                let tokens = text.flatMap { $0 }
                var offsets: [Int] = [], offset = 0
                for sentence in text where !sentence.isEmpty { offsets.append(offset); offset += sentence.count }
                let windows = offsets.enumerated().filter { $0.element + maxLength <= tokens.count }
                let first = passages.count
                for (index, start) in windows {
                    passages.append(Passage(tokens: tokens[start..<start + maxLength].map(Int32.init), document: document, index: index))
                }
                var next = 0
                for (w, window) in windows.enumerated() {
                    while next < windows.count && windows[next].element < window.element + maxLength { next += 1 }
                    if next < windows.count { pairs.append((first + w, first + next)) }
                }
            }
        }
        guard !passages.isEmpty else { throw BatchError.invalid("the documents hold no tokens") }
        self.passages = passages
        self.pairs = pairs
        self.maxLength = maxLength
        self.padID = Int32(padID ?? tokenizer.padID ?? tokenizer.endOfTextID ?? 0)
        random = SeededRandom(seed: seed)
    }

    /// Greedily packs whole sentences into chunks of at most `maxLength` tokens.
    static func pack(_ sentences: ArraySlice<[Int]>, maxLength: Int) -> [[Int32]] {
        var chunks: [[Int32]] = []
        var current: [Int32] = []
        for sentence in sentences where !sentence.isEmpty {
            if current.count + sentence.count > maxLength && !current.isEmpty {
                chunks.append(current)
                current = []
            }
            var rest = sentence[...]
            while rest.count > maxLength {
                chunks.append(rest.prefix(maxLength).map(Int32.init))
                rest = rest.dropFirst(maxLength)
            }
            current.append(contentsOf: rest.map(Int32.init))
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// `batchSize` passages in random order (a fresh shuffle each epoch).
    public mutating func next(batchSize: Int) -> PassageBatch {
        let chosen = Self.draw(batchSize, from: passages.count, order: &order, random: &random)
        return PassageBatch(chosen.map { passages[$0] }, length: maxLength, padID: padID)
    }

    /// `batchSize` (passage, following passage) pairs in random order. Requires `pairs` non-empty.
    public mutating func nextPairs(batchSize: Int) -> PassagePairBatch {
        precondition(!pairs.isEmpty, "no document has two passages")
        let chosen = Self.draw(batchSize, from: pairs.count, order: &pairOrder, random: &random).map { pairs[$0] }
        return PassagePairBatch(
            first: PassageBatch(chosen.map { passages[$0.first] }, length: maxLength, padID: padID),
            next: PassageBatch(chosen.map { passages[$0.next] }, length: maxLength, padID: padID))
    }

    private static func draw(_ count: Int, from total: Int, order: inout [Int], random: inout SeededRandom) -> [Int] {
        var chosen: [Int] = []
        while chosen.count < count {
            if order.isEmpty {
                order = Array(0..<total)
                random.shuffle(&order)
            }
            chosen.append(order.removeLast())
        }
        return chosen
    }
}

/// Errors of the batchers.
public enum BatchError: LocalizedError, Equatable {
    case invalid(String)
    public var errorDescription: String? {
        switch self {
        case .invalid(let reason): return reason
        }
    }
}
