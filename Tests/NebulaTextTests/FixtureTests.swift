import Foundation
import XCTest
@testable import NebulaText

/// Golden files written by the reference scripts in `reference/` (tiktoken, Hugging Face tokenizers).
final class FixtureTests: XCTestCase {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")

    private func cases(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent(name))
        return (try JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [[String: Any]]
    }

    private func ids(_ value: Any?) -> [Int] { (value as! [NSNumber]).map(\.intValue) }

    /// Hard cases (Unicode classes, white space runs, contractions, special tokens) against tiktoken.
    func testGPT2MatchesTiktokenOnHardCases() throws {
        let gpt2 = try SharedData.gpt2()
        for (index, testCase) in try cases("gpt2_tiktoken_cases.json").enumerated() {
            let text = testCase["text"] as! String
            XCTAssertEqual(gpt2.encode(text), ids(testCase["ordinary"]), "case \(index) \(text.prefix(40).debugDescription)")
            XCTAssertEqual(gpt2.encode(text, allowedSpecial: .all), ids(testCase["allowed"]), "case \(index) allowed")
            XCTAssertEqual(try gpt2.decode(gpt2.encode(text)), text)
        }
    }

    /// A tokenizer trained by Nebula, saved as tokenizer.json, encodes as Hugging Face encodes it.
    func testTrainedTokenizerMatchesHuggingFace() throws {
        let folder = Self.fixtures.appendingPathComponent("trained_bpe_1024")
        let fromHF = try ByteLevelBPE(huggingFaceFile: folder.appendingPathComponent("tokenizer.json"))
        let fromGPT2Files = try ByteLevelBPE(
            vocabulary: folder.appendingPathComponent("vocab.json"),
            merges: folder.appendingPathComponent("merges.txt"))
        XCTAssertEqual(fromHF.vocabularySize, 1024)
        XCTAssertEqual(fromHF.fingerprint, fromGPT2Files.fingerprint)
        XCTAssertEqual(try loadTokenizer(directory: folder).fingerprint, fromHF.fingerprint)
        for (index, testCase) in try cases("trained_bpe_1024/hf_encodings.json").enumerated() {
            let text = testCase["text"] as! String
            XCTAssertEqual(
                fromHF.encode(text, allowedSpecial: .all), ids(testCase["ids"]), "case \(index) \(text.prefix(40).debugDescription)")
            XCTAssertEqual(try fromHF.decode(ids(testCase["ids"])), text)
        }
    }

    /// Training is deterministic: the same corpus and settings give the committed files again.
    func testTrainingReproducesTheFixture() throws {
        let url = try SharedData.url("tinystories/tinystories_v2_10k.txt")
        let trained = try BPETrainer(vocabularySize: 1024).train(documents: Corpus(contentsOf: url).documents)
        XCTAssertEqual(try BPETrainer(vocabularySize: 1024).train(corpus: url).fingerprint, trained.fingerprint)  // streamed
        let folder = try temporaryFolder(self)
        try trained.save(to: folder)
        for name in ["vocab.json", "merges.txt", "tokenizer.json"] {
            let expected = try Data(contentsOf: Self.fixtures.appendingPathComponent("trained_bpe_1024/\(name)"))
            XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent(name)), expected, name)
        }
    }
}
