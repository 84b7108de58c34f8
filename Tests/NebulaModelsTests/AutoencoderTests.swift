import Foundation
import XCTest
import NebulaNN
import NebulaTensor
import NebulaText
@testable import NebulaModels

final class AutoencoderTests: XCTestCase {
    static let sentences = [
        "the cat sat on the mat.", "a dog ran in the park.", "the sun is hot today.", "we like to eat red apples.",
        "my friend has a blue car.", "birds sing in the tree.", "the fish swims fast.", "she reads a big book."
    ]

    /// A character tokenizer with <|endoftext|> over the toy sentences.
    static let toyTokenizer = CharTokenizer(corpus: sentences.joined(separator: " "), specialTokens: [SpecialToken.endOfText])

    /// The toy tokenizer and a tiny LM trained briefly on the toy sentences.
    static func toyLanguageModel() -> (CharTokenizer, GPT) {
        let tokenizer = toyTokenizer
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

    static func toyConfig(_ decoder: AutoencoderConfig.Decoder = .parallel) -> AutoencoderConfig {
        var config = AutoencoderConfig()
        (config.latents, config.latentWidth, config.width, config.heads, config.maxLength) = (8, 16, 32, 2, 32)
        (config.encoderLayers, config.decoderLayers, config.latentNoise, config.decoder) = (1, 1, 0.05, decoder)
        config.endOfText = toyTokenizer.endOfTextID
        return config
    }

    static func train(_ ae: LatentAutoencoder, _ passages: [Passage], steps: Int) throws -> [String: Double] {
        let task = AutoencoderTask(autoencoder: ae, train: passages, validation: passages)
        var options = TrainingOptions()
        (options.batchSize, options.steps, options.learningRate, options.minLearningRate, options.warmupSteps) = (8, steps, 5e-3, 5e-4, 50)
        (options.evalEvery, options.checkpointEvery, options.evalBatches, options.weightDecay) = (steps, steps, 1, 0)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-ae-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(task: task, options: options, directory: folder)
        trainer.showProgress = false
        return try trainer.run().evaluation
    }

    /// The parallel decoder learns to reconstruct the toy corpus exactly in one pass, the latent carries
    /// each passage (a shuffled latent costs loss), and the LM inside never changes.
    func testParallelDecoderReconstructsTheToyCorpusWithTheLanguageModelFrozen() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        let before = lmHash(gpt)
        var rng = SeededGenerator(seed: 2)
        let ae = LatentAutoencoder(Self.toyConfig(), languageModel: gpt, generator: &rng)
        XCTAssertFalse(ae.namedParameters().contains { $0.0.hasPrefix("lm") }, "the frozen LM is not an autoencoder parameter")
        XCTAssertNil(ae.autoregressive)
        let passages = try Self.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        let figures = try Self.train(ae, passages, steps: 600)
        XCTAssertLessThan(figures["val_loss"]!, 0.05, "\(figures)")
        XCTAssertGreaterThan(figures["val_loss_shuffled"]!, figures["val_loss"]! + 1, "a neighbour's latent decodes worse: \(figures)")
        XCTAssertEqual(figures["val_token_accuracy"]!, 1, accuracy: 1e-9)
        XCTAssertGreaterThan(figures["latent_between_share"]!, 0.1, "latents differ between passages: \(figures)")

        XCTAssertEqual(lmHash(gpt), before, "the language model's weights did not change")
        let z = ae.encode(passages.map(\.tokens))  // [8, 8, 16]
        XCTAssertEqual(z.shape, [8, 8, 16])
        for (p, passage) in passages.enumerated() {
            for v in 0..<((passage.tokens.count + 3) / 4) {  // the latents whose 4-token patch holds text
                let norm = (0..<16).map { z.data[(p * 8 + v) * 16 + $0] * z.data[(p * 8 + v) * 16 + $0] }.reduce(0, +)
                XCTAssertEqual(norm, 16, accuracy: 0.01, "each latent vector is normalised to norm √d")
            }
        }
        var generator = SeededGenerator(seed: 0)
        let decoded = try ae.decode(z, generator: &generator).map { try tokenizer.decode($0) }
        XCTAssertEqual(decoded, Self.sentences)
    }

    /// The autoregressive decoder starts as a copy of the language model, learns the toy corpus through the
    /// latent (greedy decoding with the KV cache), and the LM it was copied from stays frozen.
    func testAutoregressiveDecoderStartsFromTheLanguageModelAndReconstructs() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        let before = lmHash(gpt)
        var rng = SeededGenerator(seed: 5)
        let ae = LatentAutoencoder(Self.toyConfig(.autoregressive), languageModel: gpt, generator: &rng)
        XCTAssertEqual(lmHash(ae.autoregressive!.gpt), before, "the decoder starts from the language model's weights")
        let passages = try Self.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        let figures = try Self.train(ae, passages, steps: 400)
        XCTAssertLessThan(figures["val_loss"]!, 0.05, "\(figures)")
        XCTAssertNotNil(figures["val_loss_latent_alone"])
        XCTAssertEqual(lmHash(gpt), before, "the frozen language model did not change")
        XCTAssertNotEqual(lmHash(ae.autoregressive!.gpt), before, "the decoder's copy was fine-tuned")
        let z = ae.encode(passages.map(\.tokens))
        var generator = SeededGenerator(seed: 0)
        let decoded = try ae.decode(z, generator: &generator).map { try tokenizer.decode($0) }
        XCTAssertEqual(decoded, Self.sentences)
        let fused = try ae.decode(z, languageModelPrior: 0.5, generator: &generator).map { try tokenizer.decode($0) }
        XCTAssertEqual(fused, Self.sentences, "a moderate LM prior leaves confident decoding as it was")
    }

    /// Shallow fusion: with a large LM prior the autoregressive decoder writes the LM's own greedy text,
    /// whatever the latent says; without it, the (here untrained) decoder writes something else.
    func testLanguageModelPriorPullsDecodingTowardTheLanguageModel() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        var rng = SeededGenerator(seed: 5)
        let ae = LatentAutoencoder(Self.toyConfig(.autoregressive), languageModel: gpt, generator: &rng)
        let eot = tokenizer.endOfTextID!
        let z = Tensor.randn([3, ae.config.latents, ae.config.latentWidth], generator: &rng)
        var generator = SeededGenerator(seed: 0)
        var greedy = gpt.generate(
            prompt: [eot], maxTokens: ae.config.maxLength, options: SamplingOptions(temperature: 0),
            stopToken: eot, generator: &generator)
        if greedy.last == eot { greedy.removeLast() }
        let fused = ae.decode(z, languageModelPrior: 1e5, generator: &generator)
        XCTAssertEqual(fused, [[Int]](repeating: greedy, count: 3))
        XCTAssertEqual(ae.decode(z, languageModelPrior: 1e5, maxTokens: 0, generator: &generator), [[], [], []])
        // A latent holds at most maxLength tokens: a passage forced to fill them all ends there.
        let full = (0..<ae.config.maxLength).map { greedy[$0 % greedy.count] }
        XCTAssertEqual(
            ae.decode(z, prefixes: [[Int]](repeating: full, count: 3), generator: &generator), [[Int]](repeating: full, count: 3))
        let plain = ae.decode(z, generator: &generator)
        XCTAssertNotEqual(plain, fused)
    }

    /// A decoder trained fused with the LM (`languageModelPrior`) decodes fused by default and still
    /// reconstructs; the λ survives its config file.
    func testDecoderTrainedWithTheLanguageModelPriorReconstructsFused() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        var config = Self.toyConfig(.autoregressive)
        config.languageModelPrior = 1
        var rng = SeededGenerator(seed: 5)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        let passages = try Self.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        let figures = try Self.train(ae, passages, steps: 400)
        XCTAssertLessThan(figures["val_loss"]!, 0.05, "\(figures)")
        let z = ae.encode(passages.map(\.tokens))
        var generator = SeededGenerator(seed: 0)
        let decoded = try ae.decode(z, generator: &generator).map { try tokenizer.decode($0) }
        XCTAssertEqual(decoded, Self.sentences)
        let json = try JSONEncoder().encode(config)
        XCTAssertEqual(try JSONDecoder().decode(AutoencoderConfig.self, from: json).languageModelPrior, 1)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"lm_prior\""))
    }

    /// With `freezeEncoder`, only the autoregressive decoder trains: the latent space stays where it was.
    func testFreezingTheEncoderLeavesOnlyTheAutoregressiveDecoderTrainable() throws {
        let (_, gpt) = Self.toyLanguageModel()
        var config = Self.toyConfig(.autoregressive)
        config.freezeEncoder = true
        var rng = SeededGenerator(seed: 6)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        let trainable = ae.trainableParameters().map(\.0)
        XCTAssertFalse(trainable.isEmpty)
        XCTAssertTrue(trainable.allSatisfy { $0.hasPrefix("autoregressive.") }, "\(trainable.filter { !$0.hasPrefix("autoregressive.") })")
        XCTAssertTrue(ae.namedParameters().contains { $0.0.hasPrefix("encoder.") }, "the frozen parts are still saved")
    }

    /// Padded passages: a passage's latent does not depend on the padding around it; the decoders'
    /// targets end each passage with `<|endoftext|>`.
    func testPaddingDoesNotChangeLatents() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        var config = AutoencoderConfig()
        (config.latents, config.latentWidth, config.width, config.heads, config.maxLength) = (4, 8, 32, 2, 32)
        config.endOfText = tokenizer.endOfTextID
        var rng = SeededGenerator(seed: 3)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        let short = try tokenizer.encode("a dog ran.").map(Int32.init), long = try tokenizer.encode(Self.sentences[3]).map(Int32.init)
        let alone = ae.encode([short])
        let padded = ae.encode([short, long])
        for i in 0..<alone.count { XCTAssertEqual(alone.data[i], padded.data[i], accuracy: 1e-5) }
        // The padding token's value is masked out exactly.
        let (length, other) = (config.maxLength, Int32(tokenizer.endOfTextID! == 5 ? 6 : 5))
        let latents = [Int32(ae.padding), other].map { pad in
            let batch = PassageBatch([Passage(tokens: short)], length: length, padID: pad)
            return ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 1, length: length).data
        }
        XCTAssertEqual(latents[0], latents[1])
        let (input, targets) = LatentAutoencoder.teacherForcing(tokens: [7, 8, 0], mask: [1, 1, 0], batch: 1, length: 3, endOfText: 2)
        XCTAssertEqual(input, [2, 7, 8, 2])
        XCTAssertEqual(targets, [7, 8, 2, -1])
        XCTAssertEqual(
            LatentAutoencoder.parallelTargets(tokens: [7, 8, 0, 0], mask: [1, 1, 0, 0], batch: 1, length: 4, endOfText: 2), [7, 8, 2, -1])
        XCTAssertEqual(LatentAutoencoder.parallelTargets(tokens: [7, 8], mask: [1, 1], batch: 1, length: 2, endOfText: 2), [7, 8])
    }

    /// Gradient reaches the encoder through every decoder and loss term; the alignment term is the masked
    /// mean squared error to the LM's states.
    func testEveryLossTermTrainsTheEncoder() throws {
        let (tokenizer, gpt) = Self.toyLanguageModel()
        let ids = try tokenizer.encode(Self.sentences[0]).map(Int32.init)
        let eot = Int32(tokenizer.endOfTextID!)
        var rng = SeededGenerator(seed: 4)
        let ae = LatentAutoencoder(Self.toyConfig(.autoregressive), languageModel: gpt, generator: &rng)
        let batch = PassageBatch([Passage(tokens: ids)], length: 32, padID: eot)
        let states = ae.languageModelStates(tokens: batch.tokens, batch: 1, length: 32)
        for term in ["parallel", "autoregressive", "alignment"] {
            ae.zeroGrad()
            let z = ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 1, length: 32)
            let losses = ae.losses(z, tokens: batch.tokens, mask: batch.mask, batch: 1, states: states)
            let loss = term == "parallel" ? losses.parallel : term == "autoregressive" ? losses.autoregressive! : losses.alignment!
            XCTAssertTrue(loss.item.isFinite, term)
            loss.backward()
            XCTAssertGreaterThan((ae.encoder.toLatent.weight.gradData ?? []).map(abs).max() ?? 0, 0, "\(term) reaches the encoder")
        }
        // The alignment term by hand: mean over real tokens and state features of the squared difference.
        let z = ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 1, length: 32)
        let predicted = ae.parallel.stateHead(ae.parallel(z)).data, target = states.data
        let c = gpt.config.width
        var sum: Float = 0
        for t in 0..<ids.count { for j in 0..<c { let e = predicted[t * c + j] - target[t * c + j]; sum += e * e } }
        let alignment = ae.losses(z, tokens: batch.tokens, mask: batch.mask, batch: 1, states: states).alignment!.item
        XCTAssertEqual(alignment, sum / Float(ids.count * c), accuracy: 1e-4 * max(1, alignment))
    }

    /// The between-passage share of latent variance: 0 for identical rows, 1 for rows constant inside.
    func testBetweenPassageShare() {
        XCTAssertEqual(AutoencoderTask.betweenShare([1, 2, 3, 1, 2, 3], rowWidth: 3), 0, accuracy: 1e-12)
        XCTAssertEqual(AutoencoderTask.betweenShare([1, 1, 3, 3], rowWidth: 2), 1, accuracy: 1e-12)
        // Rows [0, 2] and [2, 0]: every column varies by ±1 around 1, the total variance is 1 as well.
        XCTAssertEqual(AutoencoderTask.betweenShare([0, 2, 2, 0], rowWidth: 2), 1, accuracy: 1e-12)
        XCTAssertEqual(AutoencoderTask.betweenShare([0, 2, 0, 2], rowWidth: 2), 0, accuracy: 1e-12)
    }
}
