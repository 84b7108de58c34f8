import Foundation
import XCTest
import NebulaNN
import NebulaTensor
import NebulaText
@testable import NebulaModels

/// The TinyStories language model committed in `models/tinystories/lm` (half precision) loads and
/// writes TinyStories English.
final class ShippedModelTests: XCTestCase {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/tinystories/lm")

    func testShippedLanguageModelContinuesAStory() throws {
        let gpt = try GPT.load(from: folder)
        let tokenizer = try loadTokenizer(directory: folder)
        XCTAssertEqual(gpt.parameterCount, 3_480_576)
        XCTAssertEqual(gpt.config.vocabSize, tokenizer.vocabularySize)
        var generator = SeededGenerator(seed: 0)
        let greedy = gpt.generate(
            prompt: try tokenizer.encode("Once upon a"), maxTokens: 1,
            options: SamplingOptions(temperature: 0), generator: &generator)
        XCTAssertEqual(try tokenizer.decode(greedy), " time")
        // A typical TinyStories sentence costs far less than the uniform 8.3 nats per token.
        let ids = try tokenizer.encode("Once upon a time, there was a little girl named Lily. She liked to play outside.").map(Int32.init)
        let loss = withNoGrad { gpt.loss(Array(ids.dropLast()), targets: Array(ids.dropFirst()), batch: 1, length: ids.count - 1) }
        XCTAssertLessThan(loss.item, 1.5)
    }
}
