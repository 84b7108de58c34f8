import Foundation
import NebulaCore

/// GPT-2's byte-level byte-pair encoding, exact: the same pre-tokenization, byte alphabet and merge
/// rules as GPT-2, `tiktoken`'s "gpt2" encoding and Hugging Face `tokenizers`.
///
/// Text is cut into pieces by ``PreTokenizer``; each piece starts as one token per byte and the
/// adjacent pair with the lowest merge rank is merged until no pair has a merge. A piece that is
/// itself a token (and that the merges would build whole) is looked up directly, and each session
/// caches the pieces it has merged.
///
/// ```swift
/// let gpt2 = try ByteLevelBPE(vocabulary: dir.appendingPathComponent("encoder.json"),
///                             merges: dir.appendingPathComponent("vocab.bpe"))
/// let ids = gpt2.encode("Hello world<|endoftext|>", allowedSpecial: .all)  // [15496, 995, 50256]
/// let text = try gpt2.decode(ids)
/// let many = gpt2.encodeParallel(bigText)  // all cores
/// ```
public struct ByteLevelBPE: Tokenizer {
    final class Storage: Sendable {
        let tokenBytes: [UInt8]
        let tokenStarts: [Int]  // token `id` is tokenBytes[tokenStarts[id]..<tokenStarts[id + 1]]
        let present: [Bool]  // false for ids the vocabulary skips
        let merges: [(left: Int, right: Int, merged: Int)]
        let pairs: PairTable
        let byteIDs: [Int32]  // the single-byte token of each byte value
        let whole: ByteStringMap  // pieces encoded as one token without merging …
        let wholeIDs: [Int32]  // … and that token
        let specialTokens: [String: Int]
        let fingerprint: UInt64

        init(
            tokenBytes: [UInt8], tokenStarts: [Int], present: [Bool], merges: [(left: Int, right: Int, merged: Int)],
            pairs: PairTable, byteIDs: [Int32], whole: ByteStringMap, wholeIDs: [Int32],
            specialTokens: [String: Int], fingerprint: UInt64
        ) {
            self.tokenBytes = tokenBytes; self.tokenStarts = tokenStarts; self.present = present
            self.merges = merges; self.pairs = pairs; self.byteIDs = byteIDs; self.whole = whole
            self.wholeIDs = wholeIDs; self.specialTokens = specialTokens; self.fingerprint = fingerprint
        }
    }

    let storage: Storage

    /// A tokenizer from its parts.
    ///
    /// - Parameters:
    ///   - tokens: the bytes of each id (`nil` for an unused id). Every byte value must have a
    ///     single-byte token. Special tokens hold their text's UTF-8 bytes.
    ///   - merges: in rank order, the pairs of ids that merge; the merged token is the one whose
    ///     bytes are the concatenation.
    ///   - specialTokens: special token texts and ids.
    ///   - ignoreMerges: when `true`, a piece that is a token is taken whole even where the merges
    ///     would split it (Hugging Face's `ignore_merges`).
    public init(
        tokens: [[UInt8]?], merges: [(left: Int, right: Int)], specialTokens: [String: Int],
        ignoreMerges: Bool = false
    ) throws {
        var arena: [UInt8] = []
        var starts: [Int] = [0]
        var present: [Bool] = []
        var byBytes = ByteStringMap(minimumCapacity: tokens.count)
        var idOfEntry: [Int] = []
        let specialIDs = Set(specialTokens.values)
        for (id, bytes) in tokens.enumerated() {
            arena.append(contentsOf: bytes ?? [])
            starts.append(arena.count)
            present.append(bytes != nil)
            if let bytes, !specialIDs.contains(id), byBytes.insert(bytes).inserted { idOfEntry.append(id) }
        }
        for (text, id) in specialTokens
        where !(0..<tokens.count).contains(id) || tokens[id] == nil
            || tokens[id]! != Array(text.utf8)
        {
            throw TokenizerError.invalidTraining("special token \(text) has id \(id), which does not hold its text")
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            guard let entry = byBytes.index(of: [UInt8(byte)]) else {
                throw TokenizerError.invalidTraining("the vocabulary has no token for byte \(byte)")
            }
            byteIDs[byte] = Int32(idOfEntry[entry])
        }
        func bytesOf(_ id: Int) -> ArraySlice<UInt8> { arena[starts[id]..<starts[id + 1]] }
        var triples: [(left: Int, right: Int, merged: Int)] = []
        triples.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            guard present.indices.contains(merge.left), present[merge.left],
                present.indices.contains(merge.right), present[merge.right]
            else {
                throw TokenizerError.invalidTraining("merge \(rank) names an id outside the vocabulary")
            }
            let joined = Array(bytesOf(merge.left) + bytesOf(merge.right))
            guard let entry = byBytes.index(of: joined) else {
                throw TokenizerError.invalidTraining(
                    "merge \(rank) makes \(ByteLevelAlphabet.string(of: joined).debugDescription), which is not in the vocabulary")
            }
            triples.append((merge.left, merge.right, idOfEntry[entry]))
        }
        let pairs = PairTable(merges: triples)

        // Tokens that the merges build whole can skip merging (most words are one token).
        var whole = ByteStringMap(minimumCapacity: byBytes.count)
        var wholeIDs: [Int32] = []
        var parts: [Int32] = []
        for entry in 0..<byBytes.count {
            let id = idOfEntry[entry]
            let bytes = byBytes.key(entry)
            parts.removeAll(keepingCapacity: true)
            for byte in bytes { parts.append(byteIDs[Int(byte)]) }
            if !ignoreMerges { Self.merge(&parts, pairs: pairs) }
            if ignoreMerges || (parts.count == 1 && parts[0] == Int32(id)) {
                whole.insert(Array(bytes))
                wholeIDs.append(Int32(id))
            }
        }

        var hash = StableHash()
        hash.combine("byte-level-bpe")
        for id in 0..<tokens.count { hash.combine(present[id] ? bytesOf(id).count : -1); hash.combine(bytesOf(id)) }
        for merge in triples { hash.combine(merge.left); hash.combine(merge.right) }
        for (text, id) in specialTokens.sorted(by: { $0.value < $1.value }) { hash.combine(text); hash.combine(id) }
        hash.combine(ignoreMerges ? 1 : 0)

        storage = Storage(
            tokenBytes: arena, tokenStarts: starts, present: present, merges: triples, pairs: pairs,
            byteIDs: byteIDs, whole: whole, wholeIDs: wholeIDs, specialTokens: specialTokens,
            fingerprint: hash.value)
    }

    // MARK: Vocabulary

    public var vocabularySize: Int { storage.present.count }
    public var specialTokens: [String: Int] { storage.specialTokens }
    public var fingerprint: UInt64 { storage.fingerprint }

    /// The bytes of token `id`, or `nil` for an id outside the vocabulary.
    public func bytes(of id: Int) -> [UInt8]? {
        guard storage.present.indices.contains(id), storage.present[id] else { return nil }
        return Array(storage.tokenBytes[storage.tokenStarts[id]..<storage.tokenStarts[id + 1]])
    }

    /// The merges in rank order, as pairs of ids.
    public var merges: [(left: Int, right: Int)] { storage.merges.map { ($0.left, $0.right) } }

    /// A copy that also recognises `names` as special tokens: an existing special token keeps its id,
    /// a new one gets the next free id.
    ///
    /// ```swift
    /// let chat = try gpt2.addingSpecialTokens(["<|user|>", "<|pad|>"])
    /// ```
    public func addingSpecialTokens(_ names: [String]) throws -> ByteLevelBPE {
        var tokens: [[UInt8]?] = (0..<vocabularySize).map { bytes(of: $0) }
        var specials = specialTokens
        for name in names where specials[name] == nil {
            specials[name] = tokens.count
            tokens.append(Array(name.utf8))
        }
        return try ByteLevelBPE(tokens: tokens, merges: merges, specialTokens: specials)
    }

    // MARK: Encoding

    /// The ids of `text`, with no special tokens recognised.
    public func encode(_ text: String) -> [Int] { encode(text, allowedSpecial: .none) }

    public func encode(_ text: String, allowedSpecial: AllowedSpecial) -> [Int] {
        var session = Session(storage)
        return session.encode(text, allowedSpecial: allowedSpecial)
    }

    /// Encodes many texts on all cores; each worker keeps one word cache across its texts.
    public func encodeBatch(_ texts: [String], allowedSpecial: AllowedSpecial) -> [[Int]] {
        let storage = storage
        // `try!`: the body never throws.
        return try! Parallel.map(count: texts.count, makeState: { Session(storage) }) { session, index in
            session.encode(texts[index], allowedSpecial: allowedSpecial)
        }
    }

    /// Encodes one large text on `threads` cores: the text is cut into chunks at line breaks where
    /// the pre-tokenizer is certain to cut too (see `safeCut`), and the chunks are encoded in
    /// parallel. The ids are exactly `encode`'s.
    public func encodeParallel(
        _ text: String, allowedSpecial: AllowedSpecial = .none,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) -> [Int] {
        var text = text
        return text.withUTF8 { bytes in
            let matcher = SpecialTokenMatcher(specialTokens: specialTokens, allowed: allowedSpecial)
            var chunks: [(range: Range<Int>, special: Int?)] = []
            let target = max(1 << 16, bytes.count / (threads * 8))
            for segment in matcher.segments(of: bytes) {
                guard segment.special == nil else { chunks.append(segment); continue }
                var start = segment.range.lowerBound
                while segment.range.upperBound - start > target {
                    guard let cut = Self.safeCut(in: bytes, from: start + target, before: segment.range.upperBound) else { break }
                    chunks.append((start..<cut, nil))
                    start = cut
                }
                chunks.append((start..<segment.range.upperBound, nil))
            }
            let storage = storage
            // `try!`: the body never throws.
            let pieces = try! Parallel.map(count: chunks.count, workers: threads, makeState: { Session(storage) }) {
                session, index -> [Int] in
                if let special = chunks[index].special { return [special] }
                var ids: [Int] = []
                session.encodeOrdinary(UnsafeBufferPointer(rebasing: bytes[chunks[index].range]), into: &ids)
                return ids
            }
            return Array(pieces.joined())
        }
    }

    /// The first position at or after `from` that holds a printable ASCII character after a single
    /// newline after a printable ASCII character (`x\ny`, cut before `y`). No piece crosses it, and
    /// the newline is a piece of its own whether or not the text goes on after it, so encoding the
    /// two sides apart gives the same ids.
    private static func safeCut(in bytes: UnsafeBufferPointer<UInt8>, from: Int, before end: Int) -> Int? {
        func printable(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }
        var i = max(from, 2)
        while i < end {
            if bytes[i - 1] == 0x0A && printable(bytes[i]) && printable(bytes[i - 2]) { return i }
            i += 1
        }
        return nil
    }

    // MARK: Decoding

    public func decode(_ ids: [Int]) throws -> String {
        String(decoding: try decodeBytes(ids), as: UTF8.self)
    }

    /// The bytes of `ids`, which need not be valid UTF-8.
    public func decodeBytes(_ ids: [Int]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        let present = storage.present, starts = storage.tokenStarts
        for id in ids {
            guard id >= 0 && id < present.count && present[id] else { throw TokenizerError.unknownTokenID(id) }
            bytes.append(contentsOf: storage.tokenBytes[starts[id]..<starts[id + 1]])
        }
        return bytes
    }

    // MARK: The merge loop

    /// Merges `parts` (token ids, initially one per byte) in place, lowest rank first and, among
    /// equal ranks, leftmost first.
    static func merge(_ parts: inout [Int32], pairs: PairTable) {
        if parts.count > 64 { mergeLong(&parts, pairs: pairs) } else { mergeShort(&parts, pairs: pairs) }
    }

    /// The merge loop for short pieces: an array of pair ranks, rescanned for the minimum each step.
    static func mergeShort(_ parts: inout [Int32], pairs: PairTable) {
        if parts.count < 2 { return }
        var ranks = [Int32](repeating: .max, count: parts.count)  // ranks[i]: the pair (i, i + 1)
        var merged = [Int32](repeating: 0, count: parts.count)
        func update(_ i: Int) {
            if let merge = pairs.merge(parts[i], parts[i + 1]) {
                ranks[i] = merge.rank
                merged[i] = merge.id
            } else {
                ranks[i] = .max
            }
        }
        for i in 0..<parts.count - 1 { update(i) }
        while parts.count > 1 {
            var best = 0
            for i in 1..<parts.count - 1 where ranks[i] < ranks[best] { best = i }
            if ranks[best] == .max { break }
            parts[best] = merged[best]
            parts.remove(at: best + 1)
            ranks.remove(at: best + 1)
            merged.remove(at: best + 1)
            ranks[parts.count - 1] = .max
            if best + 1 < parts.count { update(best) } else { ranks[best] = .max }
            if best > 0 { update(best - 1) }
        }
    }

    /// The same merge order for long pieces in O(n log n): a linked list of parts and a heap of
    /// candidate pairs ordered by (rank, position); stale candidates are skipped when popped.
    static func mergeLong(_ parts: inout [Int32], pairs: PairTable) {
        struct Candidate: Comparable {
            var rank: Int32, position: Int32, left: Int32, right: Int32, merged: Int32
            static func < (a: Candidate, b: Candidate) -> Bool { (a.rank, a.position) < (b.rank, b.position) }
            static func == (a: Candidate, b: Candidate) -> Bool { (a.rank, a.position) == (b.rank, b.position) }
        }
        let count = parts.count
        if count < 2 { return }
        var tokens = parts
        var next = Array(1...count)
        var previous = Array(-1..<count - 1)
        var heap = MinHeap<Candidate>()
        func consider(_ i: Int) {
            let j = next[i]
            guard j < count, let merge = pairs.merge(tokens[i], tokens[j]) else { return }
            heap.push(Candidate(rank: merge.rank, position: Int32(i), left: tokens[i], right: tokens[j], merged: merge.id))
        }
        for i in 0..<count - 1 { consider(i) }
        while let candidate = heap.pop() {
            let i = Int(candidate.position), j = next[i]
            guard tokens[i] == candidate.left, j < count, tokens[j] == candidate.right else { continue }
            tokens[i] = candidate.merged
            tokens[j] = -1
            next[i] = next[j]
            if next[j] < count { previous[next[j]] = i }
            if previous[i] >= 0 { consider(previous[i]) }
            consider(i)
        }
        parts.removeAll(keepingCapacity: true)
        var i = 0
        while i < count { parts.append(tokens[i]); i = next[i] }
    }

    /// One thread's encoder: the tokenizer plus a cache of the pieces it has merged.
    struct Session {
        private let storage: Storage
        private var cache = ByteStringMap(minimumCapacity: 1 << 12)
        private var cacheStarts: [Int] = [0]
        private var cacheIDs: [Int32] = []
        private var parts: [Int32] = []
        private static let cacheLimit = 1 << 18

        init(_ storage: Storage) { self.storage = storage }

        mutating func encode(_ text: String, allowedSpecial: AllowedSpecial) -> [Int] {
            var text = text
            var ids: [Int] = []
            ids.reserveCapacity(text.utf8.count / 3)
            text.withUTF8 { bytes in
                if allowedSpecial == .none || storage.specialTokens.isEmpty {
                    encodeOrdinary(bytes, into: &ids)
                    return
                }
                let matcher = SpecialTokenMatcher(specialTokens: storage.specialTokens, allowed: allowedSpecial)
                for segment in matcher.segments(of: bytes) {
                    if let special = segment.special {
                        ids.append(special)
                    } else {
                        encodeOrdinary(UnsafeBufferPointer(rebasing: bytes[segment.range]), into: &ids)
                    }
                }
            }
            return ids
        }

        /// Appends the ids of `bytes` (valid UTF-8, no special tokens) to `ids`.
        mutating func encodeOrdinary(_ bytes: UnsafeBufferPointer<UInt8>, into ids: inout [Int]) {
            var splitter = PreTokenizer(bytes)
            while let range = splitter.next() {
                let piece = UnsafeBufferPointer(rebasing: bytes[range])
                if let entry = storage.whole.index(of: piece) {
                    ids.append(Int(storage.wholeIDs[entry]))
                } else if let entry = cache.index(of: piece) {
                    for k in cacheStarts[entry]..<cacheStarts[entry + 1] { ids.append(Int(cacheIDs[k])) }
                } else {
                    parts.removeAll(keepingCapacity: true)
                    for byte in piece { parts.append(storage.byteIDs[Int(byte)]) }
                    ByteLevelBPE.merge(&parts, pairs: storage.pairs)
                    for part in parts { ids.append(Int(part)) }
                    if cache.count >= Self.cacheLimit {
                        cache = ByteStringMap(minimumCapacity: 1 << 12)
                        cacheStarts = [0]
                        cacheIDs.removeAll(keepingCapacity: true)
                    }
                    cache.insert(piece)
                    cacheIDs.append(contentsOf: parts)
                    cacheStarts.append(cacheIDs.count)
                }
            }
        }
    }
}
