import Foundation
import NebulaNN
import NebulaTensor
import XCTest
@testable import NebulaModels

/// GPT-2 folders written by `transformers` (`reference/hf_gpt2_fixture.py`) read by `GPT.load`: the same
/// logits and greedy continuations as `transformers`, and one-line errors for what Nebula cannot read.
final class HuggingFaceGPT2Tests: XCTestCase {
    func fixture(_ name: String) -> URL {
        Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/hf")!
    }

    /// Logits and greedy tokens against the golden file of `folder`.
    func assertMatchesTransformers(_ folder: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(HuggingFaceGPT2.isFolder(folder))
        let gpt = try GPT.load(from: folder)
        let golden = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("golden.safetensors"))
        let ids = try golden.integers("ids").map(Int32.init)
        let v = gpt.config.vocabSize
        let logits = withNoGrad { gpt(ids, batch: 1, length: ids.count) }.data  // [1, T, V]
        let last = Array(logits[((ids.count - 1) * v)...])
        let lastError = zip(last, try golden.floats("logits_last")).map { abs($0 - $1) }.max()!
        let head = try golden.floats("logits_head"), width = head.count / ids.count
        var headError: Float = 0
        for t in ids.indices { for j in 0..<width { headError = max(headError, abs(logits[t * v + j] - head[t * width + j])) } }
        print("\(folder.lastPathComponent): max |logit − transformers'| \(max(lastError, headError))")
        XCTAssertLessThanOrEqual(max(lastError, headError), 1e-4, "max |logit difference|", file: file, line: line)
        let argmax = ids.indices.map { t in (0..<v).max { logits[t * v + $0] < logits[t * v + $1] }! }
        XCTAssertEqual(argmax, try golden.integers("argmax"), file: file, line: line)
        var generator = SeededGenerator(seed: 0)
        let greedy = gpt.generate(
            prompt: ids.prefix(8).map(Int.init), maxTokens: 12, options: SamplingOptions(temperature: 0),
            generator: &generator)
        XCTAssertEqual(greedy, try golden.integers("greedy"), file: file, line: line)
    }

    func testOneFileWithTheTransformerPrefixAndATiedHead() throws {
        try assertMatchesTransformers(fixture("tiny"))
    }

    func testShardsWithGPT2sVocabulary() throws {
        let folder = fixture("sharded")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path))
        XCTAssertEqual(try GPT.load(from: folder).config.vocabSize, 50257)
        try assertMatchesTransformers(folder)
    }

    /// `GPT2Model.save_pretrained` (no head) writes names without `transformer.`; an untied `lm_head.weight` equal to
    /// the embedding is accepted. Same golden logits either way.
    func testNamesWithoutThePrefixAndAStoredHeadEqualToTheEmbedding() throws {
        try assertMatchesTransformers(
            try editedCopy { folder in
                let url = folder.appendingPathComponent("model.safetensors")
                let file = try SafeTensorsFile(contentsOf: url)
                var bare = try file.tensors.map {
                    SafeTensorsEntry(
                        name: String($0.name.dropFirst($0.name.hasPrefix("transformer.") ? 12 : 0)), shape: $0.shape,
                        floats: try file.floats($0.name))
                }
                let embedding = try XCTUnwrap(bare.first { $0.name == "wte.weight" })
                bare.append(
                    SafeTensorsEntry(name: "lm_head.weight", shape: embedding.shape, floats: try file.floats("transformer.wte.weight")))
                XCTAssertFalse(bare.contains { $0.name.hasPrefix("transformer.") })
                try writeSafeTensors(bare, to: url)
            })
    }

    /// A copy of the tiny fixture, changed by `edit`, in a temporary folder.
    func editedCopy(_ edit: (URL) throws -> Void) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-hf-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: fixture("tiny"), to: folder)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try edit(folder)
        return folder
    }

    func editConfig(_ folder: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent("config.json")
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func assertRefused(_ folder: URL, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GPT.load(from: folder), file: file, line: line) { error in
            let message = error.localizedDescription
            XCTAssertTrue(message.contains(expected), "\(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    func testWhatNebulaCannotReadIsRefusedByName() throws {
        assertRefused(try editedCopy { try editConfig($0) { $0["model_type"] = "llama" } }, "model_type \"llama\"")
        assertRefused(try editedCopy { try editConfig($0) { $0["activation_function"] = "relu" } }, "activation_function \"relu\"")
        assertRefused(try editedCopy { try editConfig($0) { $0["layer_norm_epsilon"] = 1e-6 } }, "layer_norm_epsilon")
        assertRefused(try editedCopy { try editConfig($0) { $0["n_inner"] = 40 } }, "n_inner 40")
        assertRefused(try editedCopy { try editConfig($0) { $0.removeValue(forKey: "n_embd") } }, "no \"n_embd\" key")
        assertRefused(
            try editedCopy {
                try editConfig($0) {
                    $0["n_embd"] = 24; $0["n_head"] = 2
                }
            }, "has shape")  // weights of width 16
        // Sizes the files cannot hold are refused before anything is allocated (10⁶ layers would be terabytes).
        assertRefused(try editedCopy { try editConfig($0) { $0["n_layer"] = 1_000_000 } }, "its sizes need at least")
        assertRefused(
            try editedCopy {
                try editConfig($0) {
                    $0["n_embd"] = 1 << 40; $0["n_head"] = 1
                }
            }, "its sizes need at least")
        assertRefused(
            try editedCopy { folder in
                try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
                try Data("not a pickle".utf8).write(to: folder.appendingPathComponent("pytorch_model.bin"))
            }, "pickle, which can run code")
        assertRefused(
            try editedCopy { folder in
                let url = folder.appendingPathComponent("model.safetensors")
                let file = try SafeTensorsFile(contentsOf: url)
                let kept = try file.tensors.filter { $0.name != "transformer.h.1.mlp.c_fc.weight" }.map {
                    SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: try file.floats($0.name))
                }
                try writeSafeTensors(kept, to: url)
            }, "no tensor \"h.1.mlp.c_fc.weight\"")
    }

    /// `save` writes what `transformers` expects (the names, shapes and config keys the fixtures have, F32, no
    /// `lm_head.weight`), and reading it back gives the model's own logits.
    func testSavedFolderHasGPT2sLayoutAndReadsBackExactly() throws {
        var rng = SeededGenerator(seed: 2)
        let gpt = GPT(GPTConfig(vocabSize: 96, contextLength: 32, layers: 2, heads: 2, width: 16), generator: &rng)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-hf-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try HuggingFaceGPT2.save(gpt, to: folder, endOfText: 95)

        let written = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("model.safetensors"))
        let reference = try SafeTensorsFile(contentsOf: fixture("tiny").appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Set(written.tensors.map(\.name)), Set(reference.tensors.map(\.name)))
        for info in reference.tensors {
            XCTAssertEqual(written.info(info.name)?.shape, info.shape, info.name)
            XCTAssertEqual(written.info(info.name)?.dtype, .f32, info.name)
        }
        XCTAssertNil(written.info("lm_head.weight"))
        let config = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json"))) as? [String: Any])
        let expected: [String: Any] = [
            "model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 16, "n_positions": 32, "vocab_size": 96,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "eos_token_id": 95
        ]
        for (key, value) in expected { XCTAssertEqual("\(config[key] ?? "nil")", "\(value)", key) }
        XCTAssertEqual(config["tie_word_embeddings"] as? Bool, true)

        let ids: [Int32] = [3, 17, 60, 2, 95, 41, 8]
        let original = withNoGrad { gpt(ids, batch: 1, length: ids.count) }.data
        let reread = withNoGrad { try! GPT.load(from: folder)(ids, batch: 1, length: ids.count) }.data
        XCTAssertEqual(original, reread)
    }

    func testANebulaFolderIsNotTakenForAHuggingFaceOne() throws {
        var rng = SeededGenerator(seed: 1)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-gpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try GPT(GPTConfig(vocabSize: 20, contextLength: 8, layers: 1, heads: 2, width: 8), generator: &rng).save(to: folder)
        XCTAssertFalse(HuggingFaceGPT2.isFolder(folder))
        XCTAssertEqual(try GPT.load(from: folder).config.vocabSize, 20)
    }
}
