import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
@testable import NebulaServe
import NebulaTensor
import XCTest

/// `nebula sample --json`: one line per sample, the same tokens as `GPT.generate` with the seed.
final class SampleCommandTests: XCTestCase {
    func testJSONLinesHoldTheLibrarysTokensAndTheirText() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let lm = TestServers.bundle.appendingPathComponent("lm")
        let (status, output) = try runCommand(
            executable,
            [
                "sample", "--model", lm.path, "--prompt", "Once upon a time", "--max-tokens", "12",
                "--samples", "2", "--temperature", "0.8", "--top-p", "0.95", "--seed", "3", "--json"
            ])
        XCTAssertEqual(status, 0)
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)

        let models = try TestServers.referenceModels.get()
        let prompt = try models.tokenizer.encode("Once upon a time")
        var generator = SeededGenerator(seed: 3)
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var expected = models.languageModel.generate(
                prompt: prompt, maxTokens: 12, options: SamplingOptions(temperature: 0.8, topP: 0.95),
                stopToken: models.endOfText, generator: &generator)
            let stopped = expected.last == models.endOfText
            if stopped { expected.removeLast() }
            XCTAssertEqual(object["tokens"] as? [Int], expected)
            XCTAssertEqual(object["text"] as? String, try models.tokenizer.decode(expected))
            XCTAssertEqual(object["finish_reason"] as? String, stopped ? "stop" : "length")
            XCTAssertEqual(object["prompt_tokens"] as? Int, prompt.count)
        }
    }
}

/// `nebula inspect` on a model folder: every shard a Hugging Face index lists, together.
final class InspectCommandTests: XCTestCase {
    func testAShardedFolderIsListedWhole() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("NebulaModelsTests/Fixtures/hf/sharded")
        let (status, output) = try runCommand(executable, ["inspect", folder.path, "--json"])
        XCTAssertEqual(status, 0)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        XCTAssertEqual(report["tensor_count"] as? Int, 28)  // two layers' 12, wte, wpe, ln_f's 2, over two shards
        XCTAssertEqual(report["parameters"] as? Int, 404_328)  // the index's total_parameters
    }
}

/// A Hugging Face GPT-2 folder as the frozen LM of a whole system, through the command line: the shipped LM exported
/// with `--format huggingface` (no data.json), an autoencoder trained around it with `--data`, a denoiser on that,
/// then `eval lm`, `generate`, `reconstruct` and the server's loader, all reading the Hugging Face folder.
final class HuggingFaceLanguageModelPipelineTests: XCTestCase {
    func testASystemTrainsAndGeneratesAroundAHuggingFaceFolder() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-hf-pipeline-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let (hf, corpus) = (root.appendingPathComponent("hf"), root.appendingPathComponent("stories.txt"))
        let (ae, diffusion) = (root.appendingPathComponent("ae"), root.appendingPathComponent("diffusion"))
        let names = ["Tom", "Lily", "Ben", "Sue"], things = ["ball", "kite", "cat", "box"], colors = ["red", "big", "blue", "small"]
        let stories = (0..<48).map { i in
            "\(names[i % 4]) had a \(colors[(i / 4) % 4]) \(things[(i / 16) % 3]). \(names[i % 4]) liked to play with it. They were happy."
        }
        try stories.joined(separator: "\n<|endoftext|>\n").write(to: corpus, atomically: true, encoding: .utf8)

        func run(_ arguments: [String]) throws -> String {
            let (status, output) = try runCommand(executable, arguments)
            XCTAssertEqual(status, 0, "nebula \(arguments.joined(separator: " "))")
            return output
        }
        _ = try run(["export", "--from", TestServers.bundle.appendingPathComponent("lm").path, "--to", hf.path, "--format", "huggingface"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: hf.appendingPathComponent("data.json").path))
        // The exported folder scores the corpus exactly as the Nebula folder it came from.
        let scores = try [TestServers.bundle.appendingPathComponent("lm"), hf].map { folder -> Double in
            let output = try run(["eval", "lm", "--model", folder.path, "--data", corpus.path, "--prompt-count", "5", "--json"])
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            return try XCTUnwrap(object["val_loss"] as? Double)
        }
        XCTAssertEqual(scores[0], scores[1])
        let tiny = ["--steps", "2", "--batch-size", "4", "--warmup", "1", "--eval-every", "2", "--eval-batches", "1"]
        _ = try run(
            [
                "train", "autoencoder", "--lm", hf.path, "--data", corpus.path, "--out", ae.path, "--latents", "4",
                "--latent-width", "8", "--width", "32", "--heads", "2", "--encoder-layers", "1", "--decoder-layers", "1",
                "--max-length", "16"
            ] + tiny)
        XCTAssertEqual(try String(contentsOf: ae.appendingPathComponent("data.json"), encoding: .utf8).contains("stories.txt"), true)
        let trainDiffusion =
            [
                "train", "diffusion", "--autoencoder", ae.path, "--out", diffusion.path, "--width", "32", "--heads", "2", "--layers", "1",
                "--schedule-scale", "0.5"
            ] + tiny
        _ = try run(trainDiffusion)
        // The latent cache is keyed by the autoencoder's weights; a torn or foreign cache is encoded again, not trusted.
        let cache = diffusion.appendingPathComponent("latents.safetensors")
        let weights = String(try LatentAutoencoder.load(from: ae).weightsHash(), radix: 16)
        XCTAssertEqual(try SafeTensorsFile(contentsOf: cache).metadata["autoencoder_weights"], weights)
        let cached = try Data(contentsOf: cache)
        try Data("not safetensors".utf8).write(to: cache)
        let (status, errors) = try runCommand(executable, trainDiffusion, capturing: \.standardError)
        XCTAssertEqual(status, 0, errors)
        XCTAssertTrue(errors.contains("latents.safetensors: unreadable"), errors)
        XCTAssertEqual(try Data(contentsOf: cache), cached, "encoded again, to the same latents")

        let generated = try run(["generate", "--model", diffusion.path, "--steps", "3", "--samples", "2", "--json"])
        XCTAssertEqual(generated.split(separator: "\n").count, 2)
        // A mask channel grown on that denoiser keeps its network, objective and noise schedule, and infills.
        let infilling = root.appendingPathComponent("diffusion-infill")
        _ = try run(
            ["train", "diffusion", "--autoencoder", ae.path, "--init-from", diffusion.path, "--known-latents", "--out", infilling.path]
                + tiny)
        let configs = try [diffusion, infilling].map {
            try JSONDecoder().decode(LatentDiffusionConfig.self, from: Data(contentsOf: $0.appendingPathComponent("config.json")))
        }
        XCTAssertEqual(configs[1].schedule, configs[0].schedule)
        XCTAssertEqual(configs[1].schedule, NoiseSchedule(scale: 0.5))
        XCTAssertEqual(configs[1].network.width, 32)
        XCTAssertTrue(configs[1].network.knownLatents)
        XCTAssertFalse(configs[0].network.knownLatents)
        let infilled = try run(
            [
                "generate", "--model", infilling.path, "--prompt", "Tom had a", "--suffix", "They were happy.", "--gap", "4", "--steps",
                "3",
                "--samples", "1", "--json"
            ])
        let infill = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(infilled.utf8)) as? [String: Any], infilled)
        let (text, middle) = (try XCTUnwrap(infill["text"] as? String), try XCTUnwrap(infill["middle"] as? String))
        XCTAssertEqual(text, "Tom had a" + middle + " They were happy.")
        // Exported with infill defaults, the folder's config carries them.
        let exported = root.appendingPathComponent("diffusion-exported")
        _ = try run(["export", "--from", infilling.path, "--to", exported.path, "--infill-lm-prior", "5", "--infill-candidates", "3"])
        let exportedConfig = try JSONDecoder().decode(
            LatentDiffusionConfig.self, from: Data(contentsOf: exported.appendingPathComponent("config.json")))
        XCTAssertEqual(exportedConfig.sampling?.infill, InfillDefaults(languageModelPrior: 5, candidates: 3))
        let reconstruction = try run(["reconstruct", "--autoencoder", ae.path, "--limit", "4", "--json"])
        let metrics = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(reconstruction.utf8)) as? [String: Any])
        XCTAssertNotNil(metrics["bleu4"] ?? metrics["bleu"])
        let served = try ServedModels.load(bundle: diffusion)
        XCTAssertEqual(served.languageModel.config.vocabSize, try TestServers.referenceModels.get().languageModel.config.vocabSize)
    }
}

/// Deterministic by default (issue #16): the same command with the same seed writes the same bytes, for each
/// stage's training (every file of its folder but the timing-bearing log) and for sampling and generation.
final class DeterminismTests: XCTestCase {
    func testTheSameCommandGivesTheSameBytes() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let (root, corpus) = try storiesFolder("determinism")
        defer { try? FileManager.default.removeItem(at: root) }
        let tiny = [
            "--steps", "6", "--batch-size", "4", "--warmup", "2", "--eval-every", "3", "--eval-batches", "1", "--checkpoint-every", "3"
        ]

        func output(_ arguments: [String]) throws -> String {
            let (status, output) = try runCommand(executable, arguments)
            XCTAssertEqual(status, 0, "nebula \(arguments.joined(separator: " "))")
            return output
        }
        /// Every file of the two folders but the log (it records items/s) and the loss plot drawn from it.
        func assertSameFiles(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
            let names = try FileManager.default.contentsOfDirectory(atPath: a.path).filter { $0 != "log.jsonl" && $0 != "loss.svg" }
                .sorted()
            XCTAssertEqual(
                names,
                try FileManager.default.contentsOfDirectory(atPath: b.path).filter { $0 != "log.jsonl" && $0 != "loss.svg" }.sorted(),
                file: file, line: line)
            XCTAssertTrue(names.contains("model.safetensors"), file: file, line: line)
            for name in names {
                XCTAssertEqual(
                    try Data(contentsOf: a.appendingPathComponent(name)), try Data(contentsOf: b.appendingPathComponent(name)),
                    "\(name) differs", file: file, line: line)
            }
        }
        for run in ["a", "b"] {
            let folder = root.appendingPathComponent(run)
            _ = try output(
                ["train", "lm", "--data", corpus.path, "--char", "--preset", "tiny", "--out", folder.appendingPathComponent("lm").path]
                    + tiny)
            _ = try output(
                [
                    "train", "autoencoder", "--lm", folder.appendingPathComponent("lm").path, "--out",
                    folder.appendingPathComponent("ae").path,
                    "--latents", "4", "--latent-width", "8", "--width", "32", "--heads", "2", "--encoder-layers", "1",
                    "--decoder-layers", "1", "--max-length", "16"
                ] + tiny)
            _ = try output(
                [
                    "train", "diffusion", "--autoencoder", folder.appendingPathComponent("ae").path, "--out",
                    folder.appendingPathComponent("diffusion").path, "--width", "32", "--heads", "2", "--layers", "1"
                ] + tiny)
        }
        for stage in ["lm", "ae", "diffusion"] {
            try assertSameFiles(root.appendingPathComponent("a/\(stage)"), root.appendingPathComponent("b/\(stage)"))
        }
        let lm = root.appendingPathComponent("a/lm").path, diffusion = root.appendingPathComponent("a/diffusion").path
        let sample = ["sample", "--model", lm, "--prompt", "Story", "--max-tokens", "30", "--samples", "2", "--seed", "5"]
        XCTAssertEqual(try output(sample), try output(sample))
        let generate = ["generate", "--model", diffusion, "--steps", "5", "--samples", "2", "--seed", "3"]
        XCTAssertEqual(try output(generate), try output(generate))
        XCTAssertNotEqual(try output(generate), try output(generate.dropLast() + ["4"]), "another seed, other passages")
    }
}

/// `--precision bf16` (issue #15): deterministic, and different from fp32 where bf16 products run; on OpenBLAS,
/// where they cannot, one warning and the same bytes as an fp32 run.
final class PrecisionTests: XCTestCase {
    func testBF16TrainingIsDeterministicAndFallsBackToFP32WithAWarning() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let (root, corpus) = try storiesFolder("precision")
        defer { try? FileManager.default.removeItem(at: root) }
        /// Trains a tiny LM; returns its weights and what the command wrote on standard error.
        func train(_ name: String, _ precision: String, backend: String? = nil) throws -> (weights: Data, errors: String) {
            let out = root.appendingPathComponent(name)
            let (status, errors) = try runCommand(
                executable,
                [
                    "train", "lm", "--data", corpus.path, "--char", "--preset", "tiny",
                    "--out", out.path, "--steps", "4", "--batch-size", "4", "--eval-every", "4",
                    "--eval-batches", "1", "--precision", precision
                ],
                environment: backend.map { ["NEBULA_BLAS": $0] } ?? [:], capturing: \.standardError)
            XCTAssertEqual(status, 0, errors)
            return (try Data(contentsOf: out.appendingPathComponent("model.safetensors")), errors)
        }
        let fallbackFP32 = try train("openblas-fp32", "fp32", backend: "openblas")
        let fallbackBF16 = try train("openblas-bf16", "bf16", backend: "openblas")
        XCTAssertEqual(fallbackBF16.weights, fallbackFP32.weights, "bf16 on OpenBLAS trains in fp32")
        XCTAssertTrue(fallbackBF16.errors.contains("warning: --precision bf16: they need the oneDNN backend"), fallbackBF16.errors)
        if let reason = MatmulPrecision.bf16Unavailable { throw XCTSkip("bf16 products unavailable here: \(reason)") }
        let (fp32, bf16, again) = (try train("fp32", "fp32"), try train("bf16", "bf16"), try train("bf16-again", "bf16"))
        XCTAssertEqual(bf16.weights, again.weights, "bf16 training is deterministic")
        XCTAssertNotEqual(bf16.weights, fp32.weights, "bf16 products really ran")
        XCTAssertFalse(bf16.errors.contains("warning"), bf16.errors)
    }
}

/// A new temporary folder holding `stories.txt`: 40 one-line stories separated by `<|endoftext|>` (the caller
/// removes the folder).
func storiesFolder(_ name: String) throws -> (root: URL, corpus: URL) {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    let corpus = root.appendingPathComponent("stories.txt")
    let stories = (0..<40).map { "Story \($0): the \(["red", "blue", "green"][$0 % 3]) ball rolled away. Tom ran after it and laughed." }
    try stories.joined(separator: "\n<|endoftext|>\n").write(to: corpus, atomically: true, encoding: .utf8)
    return (root, corpus)
}

/// Runs the executable to the end: its exit status and what it wrote on `stream` (standard output by default;
/// the other stream is discarded). `environment` is added to this process's.
func runCommand(
    _ executable: URL, _ arguments: [String], environment: [String: String] = [:],
    capturing stream: ReferenceWritableKeyPath<Process, Any?> = \.standardOutput
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process[keyPath: stream] = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}
