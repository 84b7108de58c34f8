import Foundation
import NebulaCore
import XCTest
@testable import NebulaText

final class TokenCacheTests: XCTestCase {
    private func corpus(in folder: URL, _ text: String = "one two\n<|endoftext|>\nthree four five\n<|endoftext|>\nsix") throws -> URL {
        let url = folder.appendingPathComponent("corpus.txt")
        try Data(text.utf8).write(to: url)
        return url
    }

    func testBuildOpenAndTokens() throws {
        let folder = try temporaryFolder(self)
        let tokenizer = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz \n", specialTokens: [SpecialToken.endOfText])
        let source = try corpus(in: folder)
        let cacheURL = folder.appendingPathComponent("corpus.tokens")
        let cache = try TokenCache.load(corpus: source, tokenizer: tokenizer, cacheURL: cacheURL)
        XCTAssertEqual(cache.bytesPerToken, 2)
        XCTAssertEqual(cache.documentCount, 3)
        let eot = Int32(tokenizer.endOfTextID!)
        XCTAssertEqual(Array(cache.tokens[cache.documentRange(1)]), try tokenizer.encode("three four five").map(Int32.init) + [eot])
        XCTAssertEqual(cache.tokens.count, "one two".count + "three four five".count + "six".count + 3)
        XCTAssertEqual(
            cache.tokens(ofDocuments: [2, 0]),
            try (tokenizer.encode("six") + [Int(eot)] + tokenizer.encode("one two") + [Int(eot)]).map(Int32.init))
        // The mapped tokens feed the LM batcher directly.
        var batcher = try LMBatcher(tokens: cache.tokens, batchSize: 2, contextLength: 4, seed: 0)
        let batch = batcher.next()
        XCTAssertEqual(Array(batch.x[1..<4]), Array(batch.y[0..<3]))
        // Opening again reuses the file.
        let modified = try FileManager.default.attributesOfItem(atPath: cacheURL.path)[.modificationDate] as! Date
        Thread.sleep(forTimeInterval: 0.01)
        _ = try TokenCache.load(corpus: source, tokenizer: tokenizer, cacheURL: cacheURL)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cacheURL.path)[.modificationDate] as? Date, modified)
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["corpus.tokens", "corpus.txt"])
    }

    func testUInt32ForLargeVocabularies() throws {
        let folder = try temporaryFolder(self)
        let gpt2 = try SharedData.gpt2().addingSpecialTokens((0..<15300).map { "<|extra\($0)|>" })
        XCTAssertGreaterThan(gpt2.vocabularySize, 65536)
        let cache = try TokenCache.build(corpus: corpus(in: folder), tokenizer: gpt2, cacheURL: folder.appendingPathComponent("c.tokens"))
        XCTAssertEqual(cache.bytesPerToken, 4)
        XCTAssertEqual(Array(cache.tokens[cache.documentRange(0)]), [505, 734, 50256])
    }

    func testStaleCacheIsRebuilt() throws {
        let folder = try temporaryFolder(self)
        let source = try corpus(in: folder)
        let cacheURL = folder.appendingPathComponent("corpus.tokens")
        let chars = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz \n")
        let first = try TokenCache.load(corpus: source, tokenizer: chars, cacheURL: cacheURL)
        XCTAssertEqual(first.documentCount, 3)
        // Another tokenizer: rebuilt.
        let withEOT = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz \n", specialTokens: [SpecialToken.endOfText])
        let second = try TokenCache.load(corpus: source, tokenizer: withEOT, cacheURL: cacheURL)
        XCTAssertEqual(second.tokenizerFingerprint, withEOT.fingerprint)
        XCTAssertEqual(second.tokens.count, first.tokens.count + 3)
        // The source changes: rebuilt.
        try Data("seven eight".utf8).write(to: source)
        let third = try TokenCache.load(corpus: source, tokenizer: withEOT, cacheURL: cacheURL)
        XCTAssertEqual(third.documentCount, 1)
        XCTAssertEqual(third.tokens.count, "seven eight".count + 1)
        // Other corpus options: rebuilt.
        let fourth = try TokenCache.load(
            corpus: source, options: CorpusOptions(separator: .blankLines), tokenizer: withEOT, cacheURL: cacheURL)
        XCTAssertNotEqual(fourth.sourceFingerprint, third.sourceFingerprint)
    }

    func testCorruptAndTruncatedCachesFailClearly() throws {
        let folder = try temporaryFolder(self)
        let source = try corpus(in: folder)
        let cacheURL = folder.appendingPathComponent("corpus.tokens")
        let chars = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz \n")
        _ = try TokenCache.build(corpus: source, tokenizer: chars, cacheURL: cacheURL)
        let good = try Data(contentsOf: cacheURL)
        func expectCorrupt(_ data: Data, _ words: String, line: UInt = #line) throws {
            try data.write(to: cacheURL)
            XCTAssertThrowsError(try TokenCache(contentsOf: cacheURL), line: line) { error in
                guard case .corrupt(let path, let reason)? = error as? CacheError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(path, cacheURL.path, line: line)
                XCTAssertTrue(reason.contains(words), reason, line: line)
                XCTAssertTrue(error.localizedDescription.contains("delete it to rebuild"), line: line)
            }
            XCTAssertThrowsError(try TokenCache.load(corpus: source, tokenizer: chars, cacheURL: cacheURL), line: line)
        }
        try expectCorrupt(good.prefix(good.count - 3), "truncated")
        try expectCorrupt(good.prefix(10), "shorter than the header")
        try expectCorrupt(
            Data("not a cache at all, just some text that is long enough for a header......".utf8), "not a Nebula token cache")
        var badVersion = good
        badVersion[8] = 9
        try expectCorrupt(badVersion, "version")
        var badOffsets = good
        badOffsets[good.count - 9] = 0xFF  // the last offset's high byte
        try expectCorrupt(badOffsets, "offsets")
    }
}

final class SplitAndBatchTests: XCTestCase {
    func testSeededRandomIsFixed() {
        var random = SeededRandom(seed: 42)
        // SplitMix64's reference outputs for seed 42.
        XCTAssertEqual(random.next(), 0xBDD7_3226_2FEB_6E95)
        XCTAssertEqual(random.next(), 0x28EF_E333_B266_F103)
        var bounded = SeededRandom(seed: 7)
        let draws = (0..<1000).map { _ in bounded.next(below: 10) }
        XCTAssertEqual(Set(draws), Set(0..<10))
    }

    func testSplitIsDeterministicAndDisjoint() {
        let a = DocumentSplit(documentCount: 1000, validationFraction: 0.1, seed: 1337)
        let b = DocumentSplit(documentCount: 1000, validationFraction: 0.1, seed: 1337)
        let c = DocumentSplit(documentCount: 1000, validationFraction: 0.1, seed: 1338)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.validation, c.validation)
        XCTAssertEqual(a.validation.count, 100)
        XCTAssertEqual(Set(a.train).union(a.validation), Set(0..<1000))
        XCTAssertTrue(Set(a.train).isDisjoint(with: a.validation))
        XCTAssertEqual(a.validation, a.validation.sorted())
        XCTAssertEqual(DocumentSplit(documentCount: 3, validationFraction: 0.01, seed: 0).validation.count, 1)
        XCTAssertEqual(DocumentSplit(documentCount: 5, validationFraction: 0, seed: 0).train, Array(0..<5))
    }

    func testLMBatcherShapesAndShift() throws {
        let tokens = (0..<500).map(Int32.init)
        var batcher = try LMBatcher(tokens: tokens, batchSize: 4, contextLength: 16, seed: 3)
        let batch = batcher.next()
        XCTAssertEqual(batch.x.count, 4 * 16)
        XCTAssertEqual(batch.y.count, 4 * 16)
        for row in 0..<4 {
            let x = batch.x[row * 16..<(row + 1) * 16], y = batch.y[row * 16..<(row + 1) * 16]
            XCTAssertEqual(Array(x.dropFirst()), Array(y.dropLast()))
            XCTAssertEqual(y.last, x.last! + 1)  // contiguous windows of 0, 1, 2, …
        }
        var again = try LMBatcher(tokens: tokens, batchSize: 4, contextLength: 16, seed: 3)
        XCTAssertEqual(again.next(), batch)
        XCTAssertNotEqual(batcher.next(), batch)
        XCTAssertThrowsError(try LMBatcher(tokens: [Int32](repeating: 0, count: 16), batchSize: 1, contextLength: 16, seed: 0))
        // The last possible window is reachable and never runs past the end.
        var edge = try LMBatcher(tokens: Array(tokens.prefix(18)), batchSize: 64, contextLength: 16, seed: 0)
        let edgeBatch = edge.next()
        XCTAssertEqual(edgeBatch.y.max(), 17)
    }

    func testPassagesRespectSentencesAndLength() throws {
        let tokenizer = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz .!\n", specialTokens: [SpecialToken.endOfText, SpecialToken.pad])
        let documents = ["aaa bbb. cc dd. e!", "x", String(repeating: "z", count: 25) + ". y."]
        let batcher = try PassageBatcher(documents: documents, tokenizer: tokenizer, maxLength: 10, seed: 1)
        let texts = try batcher.passages.map { try tokenizer.decode($0.tokens.map(Int.init)) }
        XCTAssertEqual(texts, ["aaa bbb.", " cc dd. e!", "x", "zzzzzzzzzz", "zzzzzzzzzz", "zzzzz. y."])
        XCTAssertEqual(batcher.passages.map(\.document), [0, 0, 1, 2, 2, 2])
        XCTAssertEqual(batcher.passages.map(\.index), [0, 1, 0, 0, 1, 2])
        XCTAssertTrue(batcher.passages.allSatisfy { $0.tokens.count <= 10 })
        XCTAssertEqual(batcher.pairs.map(\.first), [0, 3, 4])
        XCTAssertEqual(batcher.pairs.map(\.next), [1, 4, 5])
        XCTAssertEqual(batcher.padID, Int32(tokenizer.padID!))
    }

    func testWindowsStartAtEverySentence() throws {
        let tokenizer = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz .!\n", specialTokens: [SpecialToken.endOfText, SpecialToken.pad])
        let documents = ["aaa bbb. cc dd. e!", "x", String(repeating: "z", count: 25) + ". y."]
        let batcher = try PassageBatcher(documents: documents, tokenizer: tokenizer, maxLength: 10, starts: .everySentence, seed: 1)
        let texts = try batcher.passages.map { try tokenizer.decode($0.tokens.map(Int.init)) }
        // One window per sentence, as many whole sentences as fit; an over-long sentence gives its first chunk.
        XCTAssertEqual(texts, ["aaa bbb.", " cc dd. e!", " e!", "x", "zzzzzzzzzz", " y."])
        XCTAssertEqual(batcher.passages.map(\.document), [0, 0, 0, 1, 2, 2])
        XCTAssertEqual(batcher.passages.map(\.index), [0, 1, 2, 0, 0, 1])
        // A window's following passage is the window at the first sentence it does not hold.
        XCTAssertEqual(batcher.pairs.map(\.first), [0, 4])
        XCTAssertEqual(batcher.pairs.map(\.next), [1, 5])
    }

    func testFixedWindowsRunAcrossSentencesWithoutPadding() throws {
        let tokenizer = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz .!\n", specialTokens: [SpecialToken.endOfText, SpecialToken.pad])
        let documents = ["aaa bbb. cc dd. e!", "x", "ab. cd. ef. gh. ij. kl."]
        let batcher = try PassageBatcher(documents: documents, tokenizer: tokenizer, maxLength: 10, starts: .fixed, seed: 1)
        let texts = try batcher.passages.map { try tokenizer.decode($0.tokens.map(Int.init)) }
        // Exactly 10 tokens from each sentence that has 10 left in its document; "x" has none.
        XCTAssertEqual(texts, ["aaa bbb. c", " cc dd. e!", "ab. cd. ef", " cd. ef. g", " ef. gh. i", " gh. ij. k"])
        XCTAssertEqual(batcher.passages.map(\.document), [0, 0, 2, 2, 2, 2])
        XCTAssertEqual(batcher.passages.map(\.index), [0, 1, 0, 1, 2, 3])
        // The following passage starts at the first sentence after the window's end ("ab. cd. ef" → " gh. ij. k").
        XCTAssertEqual(batcher.pairs.map(\.first), [2])
        XCTAssertEqual(batcher.pairs.map(\.next), [5])
    }

    func testPassageBatchesPadAndMask() throws {
        let tokenizer = CharTokenizer(corpus: "abcdefghijklmnopqrstuvwxyz .!\n", specialTokens: [SpecialToken.pad])
        let documents = ["ab. cd. ef.", "gh. ij."]
        var batcher = try PassageBatcher(documents: documents, tokenizer: tokenizer, maxLength: 4, seed: 5)
        let pad = Int32(tokenizer.padID!)
        let batch = batcher.next(batchSize: 8)
        XCTAssertEqual(batch.tokens.count, 32)
        XCTAssertEqual(batch.mask.count, 32)
        for row in 0..<8 {
            let tokens = batch.tokens[row * 4..<(row + 1) * 4], mask = batch.mask[row * 4..<(row + 1) * 4]
            for (token, bit) in zip(tokens, mask) { XCTAssertEqual(token == pad, bit == 0) }
            XCTAssertEqual(mask.first, 1)
        }
        let pairs = batcher.nextPairs(batchSize: 6)
        XCTAssertEqual(pairs.first.tokens.count, 24)
        for row in 0..<6 {
            let first = try tokenizer.decode(pairs.first.tokens[row * 4..<(row + 1) * 4].filter { $0 != pad }.map(Int.init))
            let next = try tokenizer.decode(pairs.next.tokens[row * 4..<(row + 1) * 4].filter { $0 != pad }.map(Int.init))
            XCTAssertTrue(["ab.| cd.", " cd.| ef.", "gh.| ij."].contains("\(first)|\(next)"), "\(first)|\(next)")
        }
        var same = try PassageBatcher(documents: documents, tokenizer: tokenizer, maxLength: 4, seed: 5)
        XCTAssertEqual(same.next(batchSize: 8), batch)
    }

    func testPassagesOfTinyStoriesWithGPT2() throws {
        let gpt2 = try SharedData.gpt2()
        let stories = try Array(Corpus(contentsOf: SharedData.url("tinystories/tinystories_v2_10k.txt")).documents.prefix(200))
        var batcher = try PassageBatcher(documents: stories, tokenizer: gpt2, seed: 0)
        XCTAssertTrue(batcher.passages.allSatisfy { $0.tokens.count <= 64 && !$0.tokens.isEmpty })
        XCTAssertGreaterThan(batcher.pairs.count, 100)
        // Passages of a document rebuild it exactly.
        let firstDocument = batcher.passages.filter { $0.document == 0 }.flatMap(\.tokens).map(Int.init)
        XCTAssertEqual(try gpt2.decode(firstDocument), stories[0])
        XCTAssertEqual(batcher.padID, 50256)
        XCTAssertEqual(batcher.next(batchSize: 16).tokens.count, 16 * 64)
        // Windows at every sentence: several times the packed passages, each a run of whole sentences.
        let windows = try PassageBatcher(documents: stories, tokenizer: gpt2, starts: .everySentence, seed: 0)
        XCTAssertGreaterThan(windows.passages.count, 3 * batcher.passages.count)
        XCTAssertTrue(windows.passages.allSatisfy { $0.tokens.count <= 64 && !$0.tokens.isEmpty })
        XCTAssertEqual(windows.passages.first?.tokens, batcher.passages.first?.tokens)
        XCTAssertTrue(windows.pairs.allSatisfy { windows.passages[$0.first].document == windows.passages[$0.next].document })
    }
}
