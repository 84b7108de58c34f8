import Foundation
import NebulaModels
@testable import NebulaServe
import NebulaTensor
import XCTest

/// `nebula sample --json`: one line per sample, the same tokens as `GPT.generate` with the seed.
final class SampleCommandTests: XCTestCase {
    func testJSONLinesHoldTheLibrarysTokensAndTheirText() throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let lm = TestServers.bundle.appendingPathComponent("lm")
        let (status, output) = try runCommand(executable, ["sample", "--model", lm.path, "--prompt", "Once upon a time", "--max-tokens", "12",
                                                           "--samples", "2", "--temperature", "0.8", "--top-p", "0.95", "--seed", "3", "--json"])
        XCTAssertEqual(status, 0)
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)

        let models = try TestServers.referenceModels.get()
        let prompt = try models.tokenizer.encode("Once upon a time")
        var generator = SeededGenerator(seed: 3)
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var expected = models.languageModel.generate(prompt: prompt, maxTokens: 12, options: SamplingOptions(temperature: 0.8, topP: 0.95),
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
        XCTAssertEqual(report["tensor_count"] as? Int, 28)           // two layers' 12, wte, wpe, ln_f's 2, over two shards
        XCTAssertEqual(report["parameters"] as? Int, 404_328)        // the index's total_parameters
    }
}

/// Runs the executable to the end: its exit status and standard output.
func runCommand(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

