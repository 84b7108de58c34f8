import Foundation
import XCTest
import NebulaNN
import NebulaTensor
import NebulaText
@testable import NebulaModels

final class AutoencoderTests: XCTestCase {
    static let sentences = [
        "the cat sat on the mat.", "a dog ran in the park.", "the sun is hot today.", "we like to eat red apples.",
        "my friend has a blue car.", "birds sing in the tree.", "the fish swims fast.", "she reads a big book.",
    ]

    /// A character tokenizer with <|endoftext|> and a tiny LM trained briefly on the toy sentences.
    static func toyLanguageModel() -> (CharTokenizer, GPT) {
        let tokenizer = CharTokenizer(corpus: sentences.joined(separator: " "), specialTokens: [SpecialToken.endOfText])
        let eot = Int32(tokenizer.endOfTextID!)
        var stream: [Int32] = []
        for _ in 0..<20 { for s in sentences { stream += try! tokenizer.encode(s).map(Int32.init) + [eot] } }
        var rng = SeededGenerator(seed: 1)
        let gpt = GPT(GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 40, layers: 2, heads: 2, width: 32), generator: &rng)
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0)
        for _ in 0..<400 {
            let (x, y) = sampleWindows(stream, batch: 8, length: 40, generator: &rng)
            gpt.loss(x, targets: y, batch: 8, length: 40).backward()
            optimizer.step(gpt)
        }
        return (tokenizer, gpt)
    }

    func lmHash(_ gpt: GPT) -> [Float] { gpt.parameters().flatMap(\.data) }

    /// A tiny autoencoder learns to reconstruct the toy corpus exactly, and the LM inside never changes.
    func testToyCorpusReconstructsExactlyWithTheLanguageModelFrozen() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        let before = lmHash(gpt)
        var config = AutoencoderConfig()
        (config.latents, config.latentWidth, config.width, config.heads) = (8, 16, 32, 2)
        (config.compressorLayers, config.reconstructionLayers, config.maxLength, config.latentNoise) = (1, 1, 32, 0.05)
        var rng = SeededGenerator(seed: 2)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        XCTAssertFalse(ae.namedParameters().contains { $0.0.hasPrefix("lm") }, "the frozen LM is not an autoencoder parameter")
        let passages = try Self.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        let eot = Int32(tokenizer.endOfTextID!)
        let task = AutoencoderTask(autoencoder: ae, train: passages, validation: passages, padID: eot, endOfText: eot)
        var options = TrainingOptions()
        (options.batchSize, options.steps, options.learningRate, options.minLearningRate, options.warmupSteps) = (8, 1000, 5e-3, 5e-4, 50)
        (options.evalEvery, options.checkpointEvery, options.evalBatches, options.weightDecay) = (1000, 1000, 1, 0)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-ae-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(task: task, options: options, directory: folder)
        trainer.showProgress = false
        let summary = try trainer.run()
        XCTAssertLessThan(summary.evaluation["val_loss"]!, 0.05, "losses: \(summary.losses.suffix(3))")

        XCTAssertEqual(lmHash(gpt), before, "the language model's weights did not change")
        let z = ae.encode(passages.map(\.tokens), padID: eot)                  // [8, 8, 16]
        XCTAssertEqual(z.shape, [8, 8, 16])
        let norms = (0..<64).map { v in (0..<16).map { z.data[v * 16 + $0] * z.data[v * 16 + $0] }.reduce(0, +) }
        for n in norms { XCTAssertEqual(n, 16, accuracy: 0.01, "each latent vector is normalised to norm √d") }
        var generator = SeededGenerator(seed: 0)
        let decoded = try ae.decode(z, endOfText: Int(eot), generator: &generator).map { try tokenizer.decode($0) }
        XCTAssertEqual(decoded, Self.sentences)
    }

    /// Padded passages: a passage's latent does not depend on the padding around it.
    func testPaddingDoesNotChangeLatents() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        var config = AutoencoderConfig()
        (config.latents, config.latentWidth, config.width, config.heads, config.maxLength) = (4, 8, 32, 2, 32)
        var rng = SeededGenerator(seed: 3)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        let short = try tokenizer.encode("a dog ran.").map(Int32.init), long = try tokenizer.encode(Self.sentences[3]).map(Int32.init)
        let alone = ae.encode([short], padID: 0)
        let padded = ae.encode([short, long], padID: 5)
        for i in 0..<alone.count { XCTAssertEqual(alone.data[i], padded.data[i], accuracy: 1e-5) }
        let (input, targets) = LatentAutoencoder.teacherForcing(tokens: [7, 8, 0], mask: [1, 1, 0], batch: 1, length: 3, endOfText: 2)
        XCTAssertEqual(input, [2, 7, 8, 2])
        XCTAssertEqual(targets, [7, 8, 2, -1])
    }
}

final class AutoencoderConditioningTests: XCTestCase {
    /// Both routes give finite losses; the prefix route sends gradient into the compressor from the first
    /// step, while the adapters' gates (starting at 0) are what learns first.
    func testBothRoutesBackpropagateIntoTheEncoder() throws {
        let (tokenizer, gpt) = AutoencoderTests.toyLanguageModel()
        let ids = try tokenizer.encode(AutoencoderTests.sentences[0]).map(Int32.init)
        let eot = Int32(tokenizer.endOfTextID!)
        for route in AutoencoderConfig.Conditioning.allCases {
            var config = AutoencoderConfig()
            (config.latents, config.latentWidth, config.width, config.heads, config.maxLength, config.conditioning) = (4, 8, 32, 2, 32, route)
            var rng = SeededGenerator(seed: 4)
            let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
            let batch = PassageBatch([Passage(tokens: ids)], length: 32, padID: eot)
            let z = ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 1, length: 32)
            let loss = ae.reconstructionLoss(z, tokens: batch.tokens, mask: batch.mask, batch: 1, length: 32, endOfText: eot)
            XCTAssertTrue(loss.item.isFinite, "\(route)")
            loss.backward()
            if route == .adapters {
                XCTAssertNotNil(ae.adapters[0].gate.gradData, "the gates learn first")
            } else {
                let encoderGradient = ae.compressor[0].cross.q.weight.gradData ?? []
                XCTAssertGreaterThan(encoderGradient.map(abs).max() ?? 0, 0, "gradient reaches the compressor through the prefixes")
            }
        }
    }
}

final class AutoencoderCenteringTests: XCTestCase {
    /// The centering penalty adds λ·mean((mean over the batch of z)²) to the training loss.
    func testCenteringPenaltyIsAddedToTheLoss() throws {
        let (tokenizer, gpt) = AutoencoderTests.toyLanguageModel()
        let eot = Int32(tokenizer.endOfTextID!)
        let passages = try AutoencoderTests.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        var losses: [Float] = []
        var penalty: Float = 0
        for centering: Float in [0, 2] {
            var config = AutoencoderConfig()
            (config.latents, config.latentWidth, config.width, config.heads, config.maxLength) = (4, 8, 32, 2, 32)
            (config.latentNoise, config.centering) = (0, centering)
            var rng = SeededGenerator(seed: 6)
            let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
            let task = AutoencoderTask(autoencoder: ae, train: passages, validation: [], padID: eot, endOfText: eot)
            var generator = SeededGenerator(seed: 1)
            losses.append(task.loss(batchSize: 4, generator: &generator).item)
            if centering > 0 {
                var replay = SeededGenerator(seed: 1)
                let rows = (0..<4).map { _ in passages[replay.nextInt(below: passages.count)] }
                let batch = PassageBatch(rows, length: 32, padID: eot)
                let z = ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 4, length: 32)
                penalty = centering * z.mean(axis: 0).squared().mean().item
            }
        }
        XCTAssertGreaterThan(penalty, 0)
        XCTAssertEqual(losses[1] - losses[0], penalty, accuracy: 1e-4)
    }
}
