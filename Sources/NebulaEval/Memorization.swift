/// An index of every word n-gram (default 4) of a training corpus, to measure memorization: the share
/// of a generated text's n-grams that occur somewhere in the corpus (LD4LG reports it for 4-grams).
///
/// Words are split on whitespace (``Words``); n-grams do not cross document boundaries. Each n-gram is
/// kept as a 64-bit hash, so a few MB of text index in well under a second and take 8 bytes an n-gram;
/// a false match needs a 64-bit collision (odds ~ corpus n-grams / 2⁶⁴). The hashes are seeded per
/// process, so an index is built and queried in one run, not saved.
///
/// ```swift
/// let index = NGramIndex(documents: trainingStories)     // build once
/// index.memorization(of: samples)                         // query many: 0–1
/// ```
public struct NGramIndex: Sendable {
    public let order: Int
    private var hashes = Set<UInt64>()

    public init(documents: some Sequence<String>, order: Int = 4) {
        precondition(order > 0, "NGramIndex: order must be positive")
        self.order = order
        for document in documents { hashes.formUnion(nGramHashes(Words.split(document))) }
    }

    /// Number of distinct n-grams in the corpus.
    public var count: Int { hashes.count }

    /// Whether the corpus contains these `order` words in a row.
    public func contains(_ words: [String]) -> Bool {
        words.count == order && hashes.contains(nGramHashes(words.map { Substring($0) })[0])
    }

    /// Generated n-grams found in the corpus over all generated n-grams (each occurrence counted), 0–1;
    /// 0 when the texts have no n-grams.
    public func memorization(of texts: [String]) -> Double {
        var found = 0, total = 0
        for text in texts {
            for hash in nGramHashes(Words.split(text)) {
                total += 1
                if hashes.contains(hash) { found += 1 }
            }
        }
        return total == 0 ? 0 : Double(found) / Double(total)
    }

    /// One hash per n-gram, from the words' own hashes (each word hashed once).
    private func nGramHashes(_ words: [Substring]) -> [UInt64] {
        guard words.count >= order else { return [] }
        let wordHashes = words.map { $0.hashValue }
        return (0...(words.count - order)).map { start in
            var hasher = Hasher()
            for h in wordHashes[start..<(start + order)] { hasher.combine(h) }
            return UInt64(bitPattern: Int64(hasher.finalize()))
        }
    }
}
