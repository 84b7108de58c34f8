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
        let process = Process()
        process.executableURL = executable
        process.arguments = ["sample", "--model", lm.path, "--prompt", "Once upon a time", "--max-tokens", "12", "--samples", "2",
                             "--temperature", "0.8", "--top-p", "0.95", "--seed", "3", "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
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
