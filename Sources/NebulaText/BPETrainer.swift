import Foundation
import NebulaCore

/// Trains a byte-level BPE vocabulary on a corpus, with GPT-2's pre-tokenization.
///
/// The vocabulary starts with the 256 bytes (in GPT-2's order, so byte tokens have GPT-2's ids),
/// then one token per merge, then the special tokens. Training counts the corpus's distinct
/// pre-tokenized words once (on all cores), then repeatedly merges the most frequent adjacent pair,
/// updating pair counts only in the words that hold the merged pair, with a lazy max-heap of pairs.
///
/// **Tie-breaking** (deterministic): among pairs of equal count, the pair with the smaller left id
/// merges first, then the smaller right id — that is, pairs of older tokens before newer ones.
/// Training stops early when no pair occurs `minimumFrequency` times.
///
/// ```swift
/// var trainer = BPETrainer(vocabularySize: 4096)
/// let tokenizer = try trainer.train(documents: corpus.documents)
/// let big = try trainer.train(corpus: URL(fileURLWithPath: "stories.txt"))   // streamed
/// try tokenizer.save(to: URL(fileURLWithPath: "tok"))    // vocab.json, merges.txt, tokenizer.json
/// ```
public struct BPETrainer {
    /// Where training stands, for a progress line.
    public enum Progress {
        /// Pre-tokenizing and counting words: bytes done of the total.
        case counting(bytes: Int, of: Int)
        /// Merging: merges done of the target.
        case merging(done: Int, of: Int)
    }

    /// The vocabulary size to reach: 256 bytes + merges + special tokens.
    public var vocabularySize: Int
    /// Special tokens, given the last ids in this order.
    public var specialTokens: [String]
    /// Pairs seen fewer times than this are never merged.
    public var minimumFrequency: Int
    /// Called from time to time with the progress.
    public var progress: ((Progress) -> Void)?

    public init(
        vocabularySize: Int, specialTokens: [String] = [SpecialToken.endOfText, SpecialToken.pad],
        minimumFrequency: Int = 2, progress: ((Progress) -> Void)? = nil
    ) {
        self.vocabularySize = vocabularySize
        self.specialTokens = specialTokens
        self.minimumFrequency = minimumFrequency
        self.progress = progress
    }

    /// Trains on `documents`, each pre-tokenized separately.
    public func train(documents: [String]) throws -> ByteLevelBPE {
        var counter = WordCounter()
        counter.add(documents)
        let bytes = documents.reduce(0) { $0 + $1.utf8.count }
        progress?(.counting(bytes: bytes, of: bytes))
        return try train(counter)
    }

    /// Trains on the corpus at `url` (a file or folder, see ``Corpus``), streaming it: documents are
    /// read and counted a few megabytes at a time, so memory holds the distinct words, not the corpus.
    public func train(corpus url: URL, options: CorpusOptions = CorpusOptions()) throws -> ByteLevelBPE {
        let total = try Corpus.files(at: url).reduce(0) { sum, file in
            sum + ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0)
        }
        var counter = WordCounter()
        var batch: [String] = []
        var batchBytes = 0, done = 0
        func countBatch() {
            counter.add(batch)
            done += batchBytes
            progress?(.counting(bytes: min(done, total), of: total))
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }
        try Corpus.forEachDocument(at: url, options: options) { document in
            batch.append(document)
            batchBytes += document.utf8.count + 1
            if batchBytes >= 1 << 23 { countBatch() }
        }
        countBatch()
        return try train(counter)
    }

    private func train(_ counter: WordCounter) throws -> ByteLevelBPE {
        let specials = specialTokens.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let mergeCount = vocabularySize - 256 - specials.count
        guard mergeCount >= 0 else {
            throw TokenizerError.invalidTraining("vocabulary size \(vocabularySize) is below 256 bytes + \(specials.count) special tokens")
        }
        var words = counter.words()
        let merges = mergeWords(&words, counts: counter.counts, limit: mergeCount)

        var tokens: [[UInt8]?] = ByteLevelAlphabet.order.map { [$0] }
        for merge in merges { tokens.append(tokens[merge.left]! + tokens[merge.right]!) }
        var specialIDs: [String: Int] = [:]
        for name in specials {
            specialIDs[name] = tokens.count
            tokens.append(Array(name.utf8))
        }
        return try ByteLevelBPE(tokens: tokens, merges: merges, specialTokens: specialIDs)
    }

    // MARK: Counting words

    /// The distinct pre-tokenized words seen so far and how often each occurred.
    private struct WordCounter {
        private var map = ByteStringMap(minimumCapacity: 1 << 16)
        private(set) var counts: [Int] = []

        /// Counts the words of `documents` on all cores (a table per shard, then merged).
        mutating func add(_ documents: [String]) {
            guard !documents.isEmpty else { return }
            let shardCount = min(documents.count, ProcessInfo.processInfo.activeProcessorCount * 4)
            // `try!`: the body never throws.
            let shards = try! Parallel.map(count: shardCount, makeState: {}) { _, shard -> (ByteStringMap, [Int]) in
                var map = ByteStringMap(minimumCapacity: 1 << 14)
                var counts: [Int] = []
                for index in stride(from: shard, to: documents.count, by: shardCount) {
                    var text = documents[index]
                    text.withUTF8 { bytes in
                        var splitter = PreTokenizer(bytes)
                        while let range = splitter.next() {
                            let (entry, inserted) = map.insert(UnsafeBufferPointer(rebasing: bytes[range]))
                            if inserted { counts.append(1) } else { counts[entry] += 1 }
                        }
                    }
                }
                return (map, counts)
            }
            for (shardMap, shardCounts) in shards {
                for entry in 0..<shardMap.count {
                    let (index, inserted) = shardMap.key(entry).withUnsafeBufferPointer { map.insert($0) }
                    if inserted { counts.append(shardCounts[entry]) } else { counts[index] += shardCounts[entry] }
                }
            }
        }

        /// Each word as the ids of its bytes.
        func words() -> [[Int32]] {
            var idOfByte = [Int32](repeating: 0, count: 256)
            for (id, byte) in ByteLevelAlphabet.order.enumerated() { idOfByte[Int(byte)] = Int32(id) }
            return (0..<map.count).map { map.key($0).map { idOfByte[Int($0)] } }
        }
    }

    // MARK: Merging

    private struct Candidate: Comparable {
        var count: Int
        var pair: UInt64
        /// The heap pops the "smallest": the highest count, then the smallest pair.
        static func < (a: Candidate, b: Candidate) -> Bool { a.count != b.count ? a.count > b.count : a.pair < b.pair }
    }

    @inline(__always) private static func pair(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
    }

    /// Merges the most frequent pair `limit` times (or until pairs run out); returns the merges.
    private func mergeWords(_ words: inout [[Int32]], counts: [Int], limit: Int) -> [(left: Int, right: Int)] {
        var pairCounts: [UInt64: Int] = [:]
        var wordsWithPair: [UInt64: [Int32]] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<word.count - 1 {
                let key = Self.pair(word[i], word[i + 1])
                pairCounts[key, default: 0] += counts[w]
                if wordsWithPair[key]?.last != Int32(w) { wordsWithPair[key, default: []].append(Int32(w)) }
            }
        }
        var heap = MinHeap(pairCounts.map { Candidate(count: $0.value, pair: $0.key) })
        var merges: [(left: Int, right: Int)] = []
        var lastVisit = [Int](repeating: -1, count: words.count)
        var grown: [UInt64] = []
        var merged: [Int32] = []

        while merges.count < limit, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {  // stale: counts of old pairs only fall
                if current > 0 { heap.push(Candidate(count: current, pair: top.pair)) }
                continue
            }
            if current < max(minimumFrequency, 1) { break }
            let left = Int32(truncatingIfNeeded: top.pair >> 32), right = Int32(truncatingIfNeeded: top.pair)
            let newID = Int32(256 + merges.count)
            merges.append((Int(left), Int(right)))
            pairCounts[top.pair] = nil
            grown.removeAll(keepingCapacity: true)

            for w in wordsWithPair.removeValue(forKey: top.pair) ?? [] where lastVisit[Int(w)] != merges.count {
                lastVisit[Int(w)] = merges.count
                let word = words[Int(w)], count = counts[Int(w)]
                merged.removeAll(keepingCapacity: true)
                var i = 0
                while i < word.count {
                    guard i + 1 < word.count, word[i] == left, word[i + 1] == right else {
                        merged.append(word[i])
                        i += 1
                        continue
                    }
                    if let before = merged.last {
                        pairCounts[Self.pair(before, left), default: 0] -= count
                        let key = Self.pair(before, newID)
                        pairCounts[key, default: 0] += count
                        grown.append(key)
                        if wordsWithPair[key]?.last != w { wordsWithPair[key, default: []].append(w) }
                    }
                    if i + 2 < word.count {
                        let after = word[i + 2]
                        pairCounts[Self.pair(right, after), default: 0] -= count
                        let key = Self.pair(newID, after)
                        pairCounts[key, default: 0] += count
                        grown.append(key)
                        if wordsWithPair[key]?.last != w { wordsWithPair[key, default: []].append(w) }
                    }
                    merged.append(newID)
                    i += 2
                }
                words[Int(w)] = merged
            }
            pairCounts[top.pair] = nil
            for key in Set(grown) {
                if let count = pairCounts[key], count > 0 { heap.push(Candidate(count: count, pair: key)) }
            }
            if merges.count % 64 == 0 { progress?(.merging(done: merges.count, of: limit)) }
        }
        progress?(.merging(done: merges.count, of: limit))
        return merges
    }
}
