import Foundation
import XCTest
@testable import NebulaText

final class TrainerTests: XCTestCase {
    let documents = [
        "the cat sat on the mat. the cat ate the rat.",
        "a dog and a cat and a rat played in the sun!",
        "Lily's cat's hat was on the mat; the hat was red."
    ]

    func testTrainsToTheVocabularySizeWithSpecialsLast() throws {
        let tokenizer = try BPETrainer(vocabularySize: 300, minimumFrequency: 1).train(documents: documents)
        XCTAssertEqual(tokenizer.vocabularySize, 300)
        XCTAssertEqual(tokenizer.merges.count, 300 - 256 - 2)
        XCTAssertEqual(tokenizer.endOfTextID, 298)
        XCTAssertEqual(tokenizer.padID, 299)
        XCTAssertEqual(tokenizer.bytes(of: 0), [UInt8(ascii: "!")])  // GPT-2's byte order
        XCTAssertEqual(
            tokenizer.bytes(of: tokenizer.merges[0].left)! + tokenizer.bytes(of: tokenizer.merges[0].right)!,
            tokenizer.bytes(of: 256))
        for text in documents + ["unseen wörds 123 😀"] {
            XCTAssertEqual(try tokenizer.decode(tokenizer.encode(text)), text)
        }
        XCTAssertLessThan(tokenizer.encode(documents[0]).count, documents[0].utf8.count / 2)
    }

    func testTieBreakingIsDeterministic() throws {
        // "ab" and "cd" both occur twice: the pair of smaller ids ("a" = 64, "b" = 65) merges first.
        let tokenizer = try BPETrainer(vocabularySize: 258, specialTokens: [], minimumFrequency: 1)
            .train(documents: ["cd ab", "ab cd"])
        XCTAssertEqual(tokenizer.bytes(of: 256), Array("ab".utf8))
        XCTAssertEqual(tokenizer.bytes(of: 257), Array("cd".utf8))
        let again = try BPETrainer(vocabularySize: 258, specialTokens: [], minimumFrequency: 1)
            .train(documents: ["ab cd", "cd ab"])
        XCTAssertEqual(again.fingerprint, tokenizer.fingerprint)
    }

    func testStopsWhenPairsRunOut() throws {
        let tokenizer = try BPETrainer(vocabularySize: 5000).train(documents: ["aaaa bbbb"])
        XCTAssertLessThan(tokenizer.vocabularySize, 300)
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("aaaa bbbb")), "aaaa bbbb")
    }

    func testRejectsTooSmallVocabulary() {
        XCTAssertThrowsError(try BPETrainer(vocabularySize: 100).train(documents: documents))
    }

    func testSaveAndLoadAllFormats() throws {
        let tokenizer = try BPETrainer(vocabularySize: 320, minimumFrequency: 1).train(documents: documents)
        let folder = try temporaryFolder(self)
        try tokenizer.save(to: folder)
        let hf = try ByteLevelBPE(huggingFaceFile: folder.appendingPathComponent("tokenizer.json"))
        let gpt2Style = try ByteLevelBPE(
            vocabulary: folder.appendingPathComponent("vocab.json"),
            merges: folder.appendingPathComponent("merges.txt"))
        XCTAssertEqual(hf.fingerprint, tokenizer.fingerprint)
        XCTAssertEqual(gpt2Style.fingerprint, tokenizer.fingerprint)
        XCTAssertEqual(
            hf.encode("the cat<|endoftext|>", allowedSpecial: .all), tokenizer.encode("the cat<|endoftext|>", allowedSpecial: .all))
    }

    /// A vocabulary with an id far past its size (as `make fuzz` found: 16,666,666,662) is refused by name instead
    /// of allocating a table of that many entries; ids a little past the count are still read.
    func testAnIdFarBeyondTheVocabularyIsRefused() throws {
        let folder = try temporaryFolder(self)
        try BPETrainer(vocabularySize: 300).train(documents: ["hello world, hello tokens"]).save(to: folder)
        let vocabulary = folder.appendingPathComponent("vocab.json"), merges = folder.appendingPathComponent("merges.txt")
        var entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: vocabulary)) as? [String: Int])
        entries["far"] = 16_666_666_662
        try JSONSerialization.data(withJSONObject: entries).write(to: vocabulary)
        XCTAssertThrowsError(try ByteLevelBPE(vocabulary: vocabulary, merges: merges)) {
            XCTAssertTrue("\($0.localizedDescription)".contains("id 16666666662 is far beyond the vocabulary's"), "\($0)")
        }
        entries["far"] = entries.count + 10
        try JSONSerialization.data(withJSONObject: entries).write(to: vocabulary)
        XCTAssertNoThrow(try ByteLevelBPE(vocabulary: vocabulary, merges: merges))
    }

    func testTrainedOnTinyStoriesRoundTripsAndCompresses() throws {
        let corpus = try Corpus(
            contentsOf: SharedData.url("tinystories/tinystories_v1_train_head.txt"),
            options: CorpusOptions(separator: .blankLines))
        let tokenizer = try BPETrainer(vocabularySize: 2048).train(documents: corpus.documents)
        XCTAssertEqual(tokenizer.vocabularySize, 2048)
        let sample = corpus.documents.prefix(200).joined(separator: "\n")
        let ids = tokenizer.encodeParallel(sample)
        XCTAssertEqual(try tokenizer.decode(ids), sample)
        XCTAssertGreaterThan(Double(sample.utf8.count) / Double(ids.count), 3.5)
    }
}
