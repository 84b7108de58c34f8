import Foundation
import NebulaNN
import NebulaTensor
import XCTest

/// The bad-input table (issue #16): for every command, a missing file, an empty file, a truncated file, a file
/// of the wrong kind, NaN/Inf in a latent file and out-of-range options each end with exit status 1, exactly one
/// `nebula: error:` line (the last on standard error) naming the problem, and no output left behind.
final class BadInputTests: XCTestCase {
    struct Row {
        let arguments: [String]
        /// What the error line must contain: the file or option at fault, or the problem.
        let names: String
        /// An output the command must not leave behind.
        var output: String? = nil
    }

    func testEveryCommandRefusesBadInputInOneLineAndLeavesNothingBehind() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-bad-input-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let manager = FileManager.default
        try manager.createDirectory(at: root, withIntermediateDirectories: true)
        func path(_ name: String) -> String { root.appendingPathComponent(name).path }
        let (bundle, lm, ae) = (
            TestServers.bundle.path, TestServers.bundle.appendingPathComponent("lm"),
            TestServers.bundle.appendingPathComponent("autoencoder").path
        )

        // The bad inputs.
        try Data().write(to: root.appendingPathComponent("empty.txt"))
        try Data("just text".utf8).write(to: root.appendingPathComponent("text.txt"))
        try Data([0xC3, 0x28, 0xFF, 0xFE, 0x00, 0x80] + Array(repeating: 0x41, count: 64)).write(
            to: root.appendingPathComponent("binary.txt"))
        try manager.createDirectory(at: root.appendingPathComponent("folder"), withIntermediateDirectories: true)
        try manager.copyItem(at: lm, to: root.appendingPathComponent("truncated-lm"))
        let weights = try Data(contentsOf: lm.appendingPathComponent("model.safetensors"))
        try weights.prefix(weights.count / 2).write(to: root.appendingPathComponent("truncated-lm/model.safetensors"))
        try manager.copyItem(at: lm, to: root.appendingPathComponent("empty-config-lm"))
        try Data().write(to: root.appendingPathComponent("empty-config-lm/config.json"))
        func latents(_ name: String, shape: [Int], poison: (index: Int, value: Float)? = nil, tensor: String = "latents") throws {
            var values = [Float](repeating: 0.1, count: shape.reduce(1, *))
            if let poison { values[poison.index] = poison.value }
            try writeSafeTensors([SafeTensorsEntry(name: tensor, shape: shape, floats: values)], to: root.appendingPathComponent(name))
        }
        try latents("nan.safetensors", shape: [2, 16, 32], poison: (16 * 32 + 3 * 32 + 5, .nan))
        try latents("inf.safetensors", shape: [1, 16, 32], poison: (1, .infinity))
        try latents("shape.safetensors", shape: [1, 8, 32])
        try latents("name.safetensors", shape: [1, 16, 32], tensor: "other")
        try Data("A cat sat.\tnarration\nA dog ran.\tnarration\n".utf8).write(to: root.appendingPathComponent("one-label.tsv"))
        let classifier = TestServers.bundle.appendingPathComponent("classifier")
        try manager.copyItem(at: classifier, to: root.appendingPathComponent("other-classifier"))
        let otherConfig = root.appendingPathComponent("other-classifier/config.json")
        let config = try String(contentsOf: otherConfig, encoding: .utf8)
        try config.replacingOccurrences(of: "\"autoencoder_weights\" : \"", with: "\"autoencoder_weights\" : \"0").write(
            to: otherConfig, atomically: true, encoding: .utf8)
        let nan = try Data(contentsOf: root.appendingPathComponent("nan.safetensors"))
        try nan.prefix(60).write(to: root.appendingPathComponent("truncated.safetensors"))

        let rows: [Row] = [
            // language models
            Row(arguments: ["sample", "--model", path("missing")], names: "missing/config.json: missing"),
            Row(arguments: ["sample", "--model", path("empty.txt")], names: "empty.txt/config.json"),
            Row(arguments: ["sample", "--model", path("truncated-lm")], names: "truncated-lm/model.safetensors"),
            Row(arguments: ["sample", "--model", path("empty-config-lm")], names: "empty-config-lm/config.json"),
            Row(arguments: ["sample", "--model", lm.path, "--top-p", "2"], names: "--top-p"),
            Row(arguments: ["sample", "--model", lm.path, "--temperature=-1"], names: "--temperature"),
            Row(arguments: ["eval", "lm", "--model", lm.path, "--data", path("missing")], names: "missing"),
            Row(arguments: ["eval", "lm", "--model", lm.path, "--data", path("empty.txt")], names: "empty.txt: the corpus holds no text"),
            Row(arguments: ["eval", "lm", "--model", lm.path, "--data", path("binary.txt")], names: "binary.txt: invalid UTF-8"),
            Row(
                arguments: ["eval", "lm", "--model", lm.path, "--data", bundle + "/../../README.md", "--prompts", path("text.txt")],
                names: "text.txt: line 1"),
            Row(
                arguments: ["train", "lm", "--data", path("missing"), "--char", "--out", path("out-lm1")], names: "missing",
                output: "out-lm1"),
            Row(
                arguments: ["train", "lm", "--data", path("empty.txt"), "--char", "--out", path("out-lm2")], names: "empty.txt",
                output: "out-lm2"),
            Row(
                arguments: ["train", "lm", "--data", path("text.txt"), "--char", "--out", path("out-lm3")], names: "too few",
                output: "out-lm3"),
            Row(
                arguments: ["train", "lm", "--data", path("binary.txt"), "--char", "--out", path("out-lm4")],
                names: "binary.txt: invalid UTF-8", output: "out-lm4"),
            Row(
                arguments: ["train", "lm", "--data", path("text.txt"), "--tokenizer", path("folder"), "--out", path("out-lm5")],
                names: "no tokenizer found", output: "out-lm5"),
            Row(
                arguments: ["train", "lm", "--data", path("text.txt"), "--char", "--val-fraction", "2", "--out", path("out-lm6")],
                names: "--val-fraction", output: "out-lm6"),
            Row(
                arguments: ["tokenizer", "train", "--data", path("empty.txt"), "--out", path("out-tok")], names: "empty.txt",
                output: "out-tok"),
            Row(arguments: ["tokenizer", "encode", "--tokenizer", path("folder")], names: "no tokenizer found"),
            Row(arguments: ["tokenizer", "encode", "--tokenizer", lm.path, "--file", path("binary.txt")], names: "binary.txt"),
            Row(
                arguments: ["export", "--from", path("missing"), "--to", path("out-export1")], names: "missing/model.safetensors",
                output: "out-export1"),
            Row(
                arguments: ["export", "--from", path("truncated-lm"), "--to", path("out-export2"), "--format", "huggingface"],
                names: "model.safetensors", output: "out-export2"),
            Row(
                arguments: ["export", "--from", lm.path, "--to", path("out-export3"), "--dtype", "I8"], names: "--dtype",
                output: "out-export3"),
            Row(
                arguments: ["export", "--from", lm.path, "--to", path("out-export4"), "--noise-scale", "1.2"],
                names: "not a denoiser's config", output: "out-export4"),
            Row(
                arguments: ["export", "--from", lm.path, "--to", path("out-export5"), "--infill-candidates", "0"],
                names: "--infill-candidates must be positive, got 0", output: "out-export5"),
            Row(
                arguments: ["export", "--from", lm.path, "--to", path("out-export6"), "--infill-lm-prior", "17"],
                names: "--infill-lm-prior must be in [0, 16], got 17.0", output: "out-export6"),
            Row(arguments: ["inspect", path("empty.txt")], names: "empty.txt"),
            Row(arguments: ["inspect", path("text.txt")], names: "text.txt"),
            Row(arguments: ["inspect", path("truncated.safetensors")], names: "truncated.safetensors"),
            // autoencoders
            Row(
                arguments: ["train", "autoencoder", "--lm", path("missing"), "--out", path("out-ae1")], names: "missing/config.json",
                output: "out-ae1"),
            Row(
                arguments: ["train", "autoencoder", "--lm", lm.path, "--latents", "3", "--out", path("out-ae2")], names: "--latents",
                output: "out-ae2"),
            Row(
                arguments: ["train", "autoencoder", "--lm", lm.path, "--data", path("empty.txt"), "--out", path("out-ae3")],
                names: "empty.txt", output: "out-ae3"),
            Row(
                arguments: ["train", "autoencoder", "--lm", lm.path, "--input-masking", "1.5", "--out", path("out-ae4")],
                names: "--input-masking", output: "out-ae4"),
            Row(arguments: ["decode", "--autoencoder", ae, path("nan.safetensors")], names: "nan.safetensors: latents[1][3][5] is nan"),
            Row(arguments: ["decode", "--autoencoder", ae, path("inf.safetensors")], names: "inf.safetensors: latents[0][0][1] is inf"),
            Row(arguments: ["decode", "--autoencoder", ae, path("shape.safetensors")], names: "do not fit this autoencoder"),
            Row(arguments: ["decode", "--autoencoder", ae, path("name.safetensors")], names: "\"latents\""),
            Row(arguments: ["decode", "--autoencoder", ae, path("truncated.safetensors")], names: "truncated.safetensors"),
            Row(arguments: ["decode", "--autoencoder", ae, path("empty.txt")], names: "empty.txt"),
            Row(arguments: ["decode", "--autoencoder", ae, path("missing")], names: "missing"),
            Row(
                arguments: ["encode", "--autoencoder", ae, "A cat.", "--out", path("no-folder/z.safetensors")],
                names: "no-folder/z.safetensors: cannot write"),
            Row(arguments: ["reconstruct", "--autoencoder", ae, "--input", path("empty.txt")], names: "empty.txt: no passages"),
            Row(arguments: ["reconstruct", "--autoencoder", ae, "--refine=-2"], names: "--refine must be ≥ 0, got -2"),
            Row(arguments: ["reconstruct", "--autoencoder", ae, "--input", path("folder")], names: "folder: cannot read"),
            Row(arguments: ["reconstruct", "--autoencoder", path("missing")], names: "missing/config.json"),
            Row(arguments: ["interpolate", "--autoencoder", ae, "a", "b", "--steps", "1"], names: "--steps"),
            // denoisers and bundles
            Row(
                arguments: ["train", "diffusion", "--autoencoder", path("missing"), "--out", path("out-diff")],
                names: "missing/config.json", output: "out-diff"),
            Row(
                arguments: [
                    "train", "diffusion", "--autoencoder", ae, "--known-latents", "--known-latents-rate", "2", "--out", path("out-diff2")
                ],
                names: "--known-latents-rate must be in [0, 1], got 2.0", output: "out-diff2"),
            Row(
                arguments: ["train", "diffusion", "--autoencoder", ae, "--schedule-scale", "0", "--out", path("out-diff3")],
                names: "--schedule-scale must be positive, got 0.0", output: "out-diff3"),
            Row(arguments: ["generate", "--model", path("missing")], names: "missing/config.json"),
            Row(
                arguments: ["generate", "--model", bundle, "--prompt", "Tom ran.", "--suffix", "The end.", "--decoder", "parallel"],
                names: "--decoder parallel cannot fill a gap"),
            Row(arguments: ["generate", "--model", bundle, "--steps", "0"], names: "--steps must be at least 1, got 0"),
            Row(
                arguments: ["generate", "--model", bundle, "--sampler", "ddim", "--noise-scale", "1.5"],
                names: "--noise-scale applies to the ddpm sampler; ddim draws no noise (got 1.5 with ddim)"),
            Row(
                arguments: [
                    "eval", "generation", "--model", bundle, "--decode-top-p", "0.9", "1.5", "--out", path("out-eval5/results.json")
                ],
                names: "--decode-top-p must be in (0, 1], got 1.5", output: "out-eval5/results.json"),
            Row(arguments: ["edit", "--model", bundle, "A cat.", "--strength", "2"], names: "--strength"),
            Row(
                arguments: ["eval", "generation", "--model", path("missing"), "--out", path("out-eval/results.json")],
                names: "missing/config.json", output: "out-eval/results.json"),
            Row(
                arguments: ["eval", "generation", "--model", bundle, "--judge", path("folder"), "--out", path("out-eval2/results.json")],
                names: "folder: not a sentence encoder folder (no config.json)", output: "out-eval2/results.json"),
            Row(
                arguments: [
                    "eval", "generation", "--model", bundle, "--judge-lm", path("missing"), "--out", path("out-eval3/results.json")
                ],
                names: "missing/config.json", output: "out-eval3/results.json"),
            Row(
                arguments: [
                    "eval", "generation", "--model", bundle, "--steps", "10", "--estimate-step", "10", "--out",
                    path("out-eval4/results.json")
                ],
                names: "--estimate-step must be between 0 (off) and --steps − 1 (9), got 10", output: "out-eval4/results.json"),
            Row(arguments: ["embed", "--model", lm.path, "--text", "A cat."], names: "model_type \"null\" is not bert"),
            Row(arguments: ["embed", "--model", path("folder"), "--text", "A cat.", "--input", path("text.txt")], names: "not both"),
            Row(arguments: ["report", "--results", path("missing"), "--out", path("out-report")], names: "missing", output: "out-report"),
            Row(arguments: ["serve", "--model", path("missing"), "--port", "0"], names: "missing/config.json"),
            // attribute control
            Row(
                arguments: ["train", "classifier", "--autoencoder", ae, "--data", path("text.txt"), "--out", path("out-classifier")],
                names: "text.txt:1: expected text<TAB>label, found 0 tabs", output: "out-classifier"),
            Row(
                arguments: ["train", "classifier", "--autoencoder", ae, "--data", path("one-label.tsv"), "--out", path("out-classifier2")],
                names: "at least two labels", output: "out-classifier2"),
            Row(
                arguments: ["generate", "--model", bundle, "--classifier", classifier.path, "--label", "happy"],
                names: "unknown label \"happy\": this classifier knows \"dialogue\", \"narration\""),
            Row(arguments: ["generate", "--model", bundle, "--classifier", classifier.path], names: "--classifier and --label go together"),
            Row(
                arguments: ["generate", "--model", bundle, "--classifier", path("other-classifier"), "--label", "dialogue"],
                names: "trained on another autoencoder"),
            Row(
                arguments: [
                    "eval", "control", "--model", bundle, "--classifier", classifier.path, "--label", "happy", "--out",
                    path("out-control.json")
                ],
                names: "--label happy", output: "out-control.json")
        ]
        for row in rows {
            let (status, error) = try runCommandCapturingErrors(executable, row.arguments)
            let command = "nebula " + row.arguments.joined(separator: " ")
            XCTAssertEqual(status, 1, command)
            let lines = error.split(separator: "\n")
            XCTAssertEqual(lines.filter { $0.hasPrefix("nebula: error:") }.count, 1, "\(command): \(error)")
            XCTAssertTrue(lines.last?.hasPrefix("nebula: error:") ?? false, "\(command): \(error)")
            XCTAssertTrue(lines.last?.contains(row.names) ?? false, "\(command): expected \"\(row.names)\" in: \(error)")
            if let output = row.output {
                XCTAssertFalse(manager.fileExists(atPath: path(output)), "\(command) left \(output) behind")
            }
        }
    }
}

/// Runs the executable to the end: its exit status and standard error.
func runCommandCapturingErrors(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, error: String) {
    let (status, error) = try runCommand(executable, arguments, capturing: \.standardError)
    return (status, error)
}
