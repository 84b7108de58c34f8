import Foundation
import NebulaNN
import NebulaTensor
import NebulaText
import XCTest
@testable import NebulaModels

/// The judge's sentence encoder against `transformers` and `tokenizers` on a tiny random BERT
/// (`reference/bert_fixture.py`): the same WordPiece ids, hidden states and pooled embeddings; one-line
/// errors for folders and tokenizer files it cannot read.
final class BERTTests: XCTestCase {
    let folder = Bundle.module.url(forResource: "tiny", withExtension: nil, subdirectory: "Fixtures/bert")!
    var golden: SafeTensorsFile { get throws { try SafeTensorsFile(contentsOf: folder.appendingPathComponent("golden.safetensors")) } }

    func testWordPieceEncodesAsTokenizers() throws {
        let tokenizer = try WordPieceTokenizer(huggingFaceFile: folder.appendingPathComponent("tokenizer.json"))
        let texts = try JSONDecoder().decode([String].self, from: Data(contentsOf: folder.appendingPathComponent("wordpiece_cases.json")))
        XCTAssertGreaterThan(texts.count, 30)
        var unknowns = 0, continuations = 0, truncated = 0
        for (i, text) in texts.enumerated() {
            let expected = try golden.integers("ids_\(i)")
            let ids = tokenizer.encode(text)
            XCTAssertEqual(ids, expected, "case \(i): \(text.debugDescription)")
            unknowns += ids.filter { $0 == tokenizer.unknownID }.count
            continuations += ids.filter { id in tokenizer.vocabulary.contains { $0.value == id && $0.key.hasPrefix("##") } }.count
            if ids.count == tokenizer.maxLength { truncated += 1 }
        }
        // The fixture exercises every path: unknown words, ## pieces, truncation.
        XCTAssertGreaterThan(unknowns, 0)
        XCTAssertGreaterThan(continuations, 0)
        XCTAssertGreaterThan(truncated, 0)
    }

    func testHiddenStatesAndEmbeddingsMatchTransformers() throws {
        let golden = try golden
        let bert = try BERT.load(from: folder)
        let ids = try golden.integers("ids").map(Int32.init)
        let mask = try golden.integers("mask").map(Float.init)
        let shape = try XCTUnwrap(golden.info("ids")).shape
        let hidden = withNoGrad { bert(ids, batch: shape[0], length: shape[1], keyMask: mask) }  // [B, T, C]
        let expected = try golden.floats("hidden")
        var error: Float = 0
        for (i, (a, b)) in zip(hidden.data, expected).enumerated() where mask[i / bert.config.width] == 1 {  // padded rows are unused
            error = max(error, abs(a - b))
        }
        print("BERT: max |hidden − transformers'| \(error)")
        XCTAssertLessThanOrEqual(error, 1e-4)

        let encoder = try SentenceEncoder(folder: folder)
        XCTAssertEqual(encoder.pooling, .mean)
        XCTAssertTrue(encoder.normalizes)
        let texts = [
            "Once upon a time, there was a little girl named Lily.", "She loved to play outside.",
            "Tom said, \"Let's go to the park!\" Lily smiled and ran after the big red ball in the sun.", "café"
        ]
        for batchSize in [1, 3] {  // batching and padding do not change a text's vector
            let vectors = encoder.embed(texts, batchSize: batchSize)
            let flat = vectors.flatMap { $0 }
            let embeddingError = zip(flat, try golden.floats("embeddings")).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(embeddingError, 1e-5, "batch size \(batchSize)")
            for vector in vectors { XCTAssertEqual(vector.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5) }
        }
    }

    /// A copy of the fixture folder with `edit` applied.
    func editedCopy(_ edit: (URL) throws -> Void) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("bert-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: folder, to: copy)
        addTeardownBlock { try? FileManager.default.removeItem(at: copy) }
        try edit(copy)
        return copy
    }

    func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func assertRefused(_ expected: String, file: StaticString = #filePath, line: UInt = #line, _ edit: (URL) throws -> Void) throws {
        let copy = try editedCopy(edit)
        XCTAssertThrowsError(try SentenceEncoder(folder: copy), file: file, line: line) { error in
            let message = error.localizedDescription
            XCTAssertTrue(message.contains(expected), "\(message) should say \(expected)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    func testUnreadableFoldersAreRefusedInOneLine() throws {
        try assertRefused("model_type \"gpt2\" is not bert") {
            try self.editJSON($0.appendingPathComponent("config.json")) { $0["model_type"] = "gpt2" }
        }
        try assertRefused("hidden_act \"relu\"") {
            try self.editJSON($0.appendingPathComponent("config.json")) { $0["hidden_act"] = "relu" }
        }
        try assertRefused("no \"num_hidden_layers\" key") {
            try self.editJSON($0.appendingPathComponent("config.json")) { $0["num_hidden_layers"] = nil }
        }
        try assertRefused("invalid sizes") { try self.editJSON($0.appendingPathComponent("config.json")) { $0["num_attention_heads"] = 5 } }
        try assertRefused("encoder.layer.2.attention.self.query.weight") {
            try self.editJSON($0.appendingPathComponent("config.json")) { $0["num_hidden_layers"] = 3 }
        }
        try assertRefused("has shape [40, 32], expected [41, 32]") {
            try self.editJSON($0.appendingPathComponent("config.json")) { $0["max_position_embeddings"] = 41 }
        }
        try assertRefused("model type BPE is not WordPiece") {
            try self.editJSON($0.appendingPathComponent("tokenizer.json")) { root in
                var model = root["model"] as! [String: Any]
                model["type"] = "BPE"
                root["model"] = model
            }
        }
        try assertRefused("the vocabulary has no [CLS] token") {
            try self.editJSON($0.appendingPathComponent("tokenizer.json")) { root in
                var model = root["model"] as! [String: Any]
                var vocab = model["vocab"] as! [String: Any]
                vocab["[CLS]"] = nil
                model["vocab"] = vocab
                root["model"] = model
            }
        }
        try assertRefused("is not a token id") {
            try self.editJSON($0.appendingPathComponent("tokenizer.json")) { root in
                var model = root["model"] as! [String: Any]
                model["vocab"] = ["[UNK]": "zero", "[CLS]": 1, "[SEP]": 2]
                root["model"] = model
            }
        }
        try assertRefused("ids beyond the model's vocabulary") {
            try self.editJSON($0.appendingPathComponent("tokenizer.json")) { root in
                var model = root["model"] as! [String: Any]
                var vocab = model["vocab"] as! [String: Any]
                vocab["zebra"] = 5000
                model["vocab"] = vocab
                root["model"] = model
            }
        }
        try assertRefused("not valid JSON") { try Data("{\"model\": [".utf8).write(to: $0.appendingPathComponent("tokenizer.json")) }
        try assertRefused("pooling [\"pooling_mode_max_tokens\"] is not supported") {
            try self.editJSON($0.appendingPathComponent("1_Pooling/config.json")) {
                $0["pooling_mode_mean_tokens"] = false; $0["pooling_mode_max_tokens"] = true
            }
        }
        try assertRefused("no config.json") { try FileManager.default.removeItem(at: $0.appendingPathComponent("config.json")) }
        try assertRefused("model.safetensors: missing") {
            try FileManager.default.removeItem(at: $0.appendingPathComponent("model.safetensors"))
        }
        try assertRefused("model.safetensors") {  // truncated weights: the safetensors reader's own error, naming the file
            let url = $0.appendingPathComponent("model.safetensors")
            try Data(try Data(contentsOf: url).prefix(1000)).write(to: url)
        }
    }

    /// Without `modules.json` the vectors are normalised (all-MiniLM's case); a `modules.json` without `Normalize` turns it off.
    func testNormalisationFollowsModulesJSON() throws {
        let plain = try editedCopy { folder in
            let modules: [[String: Any]] = [
                ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
                ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"]
            ]
            try JSONSerialization.data(withJSONObject: modules).write(to: folder.appendingPathComponent("modules.json"))
        }
        let encoder = try SentenceEncoder(folder: plain)
        XCTAssertFalse(encoder.normalizes)
        let norm = encoder.embed(["She loved to play outside."])[0].reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertGreaterThan(abs(norm - 1), 0.01)
        let bare = try editedCopy { try FileManager.default.removeItem(at: $0.appendingPathComponent("modules.json")) }
        XCTAssertTrue(try SentenceEncoder(folder: bare).normalizes)
    }
}
