import Foundation
import XCTest
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText
@testable import NebulaDiffusion

/// The whole system on a toy corpus: a language model, an autoencoder around it (frozen), a denoiser in
/// its latent space; generated latents must decode to sentences of the corpus.
final class EndToEndTests: XCTestCase {
    static let sentences = [
        "the cat sat on the mat.", "a dog ran in the park.", "the sun is hot today.", "we like to eat red apples.",
        "my friend has a blue car.", "birds sing in the tree.", "the fish swims fast.", "she reads a big book."
    ]

    func testToyPipelineGeneratesCorpusSentences() throws {
        let tokenizer = CharTokenizer(corpus: Self.sentences.joined(separator: " "), specialTokens: [SpecialToken.endOfText])
        let eot = Int32(tokenizer.endOfTextID!)
        var stream: [Int32] = []
        for _ in 0..<20 { for s in Self.sentences { stream += try tokenizer.encode(s).map(Int32.init) + [eot] } }

        // Stage 1: the language model.
        var rng = SeededGenerator(seed: 1)
        let gpt = GPT(GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 40, layers: 2, heads: 2, width: 32), generator: &rng)
        try quietTrainer(
            LanguageModelTask(model: gpt, train: stream, validation: []), steps: 400, learningRate: 3e-3, batchSize: 8, warmup: 30
        ).run()

        // Stage 2: the autoencoder around the frozen LM.
        var aeConfig = AutoencoderConfig()
        (aeConfig.latents, aeConfig.latentWidth, aeConfig.width, aeConfig.heads) = (8, 16, 32, 2)
        (aeConfig.encoderLayers, aeConfig.decoderLayers, aeConfig.maxLength, aeConfig.latentNoise) = (1, 1, 32, 0.05)
        aeConfig.endOfText = Int(eot)
        let ae = LatentAutoencoder(aeConfig, languageModel: gpt, generator: &rng)
        let passages = try Self.sentences.map { Passage(tokens: try tokenizer.encode($0).map(Int32.init)) }
        try quietTrainer(
            AutoencoderTask(autoencoder: ae, train: passages, validation: passages),
            steps: 1000, learningRate: 5e-3, batchSize: 8, warmup: 30
        ).run()

        let latents = ae.encode(passages.map(\.tokens))
        var decoding = SeededGenerator(seed: 0)
        let reconstructed = try ae.decode(latents, generator: &decoding).map { try tokenizer.decode($0) }
        let exact = zip(reconstructed, Self.sentences).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(exact, 6, "the autoencoder reconstructs the corpus: \(reconstructed)")

        // Stage 3: the denoiser on the eight latents (unconditional).
        var config = LatentDiffusionConfig()
        (config.network.latents, config.network.latentWidth, config.network.width) = (8, 16, 64)
        (config.network.layers, config.network.heads, config.emaDecay) = (2, 4, 0.99)
        let denoiser = Denoiser(config.network, generator: &rng)
        let task = DiffusionTask(
            config: config, denoiser: denoiser, latents: latents, previous: [Int?](repeating: nil, count: 8), validation: latents)
        try quietTrainer(task, steps: 2000, learningRate: 1e-3, batchSize: 32, warmup: 30).run()

        let averaged = Denoiser(config.network, generator: &rng)
        task.ema.copy(to: averaged)
        let system = LatentDiffusion(config: config, denoiser: averaged, autoencoder: ae)
        var generator = SeededGenerator(seed: 7)
        let z = system.sample(count: 8, try system.configuration(for: GenerationRequest(steps: 50)), generator: &generator)
        let texts = try ae.decode(z, generator: &decoding).map { try tokenizer.decode($0) }
        // Each sample lies close to a corpus sentence (character LCS ≥ 85% of the longer text), and the
        // samples reach several different sentences.
        let nearest = texts.map { text in
            Self.sentences.map { (sentence: $0, similarity: Self.similarity(text, $0)) }.max { $0.similarity < $1.similarity }!
        }
        XCTAssertGreaterThanOrEqual(nearest.filter { $0.similarity >= 0.85 }.count, 6, "generated: \(texts)")
        XCTAssertGreaterThanOrEqual(texts.filter { Self.sentences.contains($0) }.count, 2, "generated: \(texts)")
        XCTAssertGreaterThanOrEqual(Set(nearest.map(\.sentence)).count, 3, "the samples are not all the same sentence: \(texts)")
    }

    /// Longest common subsequence of characters over the longer length.
    static func similarity(_ a: String, _ b: String) -> Double {
        let (x, y) = (Array(a), Array(b))
        var row = [Int](repeating: 0, count: y.count + 1)
        for i in 1...max(x.count, 1) where !x.isEmpty {
            var diagonal = 0
            for j in 1...max(y.count, 1) where !y.isEmpty {
                let saved = row[j]
                row[j] = x[i - 1] == y[j - 1] ? diagonal + 1 : max(row[j], row[j - 1])
                diagonal = saved
            }
        }
        return Double(row[y.count]) / Double(max(x.count, y.count, 1))
    }
}
