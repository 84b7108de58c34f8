import Foundation
import XCTest
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText
@testable import NebulaEval

/// The evaluation protocol as a library, on an untrained toy system: which rows, sweep points and
/// continuation points a plan makes, that they are reproducible, and that a bad plan is refused.
final class GenerationEvaluationTests: XCTestCase {
    static let names = ["Tom", "Sue", "Ben", "Lily", "Max", "Mia"]
    static let things = ["a red ball", "a big dog", "a small cat", "a blue kite", "a green frog"]
    /// Stories of three sentences, so held-out documents have passages that follow one another.
    static let documents = (0..<30).map { i in
        let (name, thing) = (names[i % names.count], things[i % things.count])
        return "\(name) had \(thing). \(name) liked to play with it in the park. One day it was gone and \(name) was sad."
    }

    /// An untrained conditional system on a character tokenizer of the stories, and a second small GPT.
    static func toySystem() -> (system: LatentDiffusion, tokenizer: CharTokenizer, other: GPT) {
        let tokenizer = CharTokenizer(corpus: documents.joined(separator: " "), specialTokens: ["<|endoftext|>"])
        var rng = SeededGenerator(seed: 5)
        let gpt = GPT(GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 48, layers: 1, heads: 2, width: 16), generator: &rng)
        var aeConfig = AutoencoderConfig()
        (aeConfig.latents, aeConfig.latentWidth, aeConfig.width, aeConfig.heads) = (4, 8, 16, 2)
        (aeConfig.encoderLayers, aeConfig.decoderLayers, aeConfig.maxLength) = (1, 1, 24)
        (aeConfig.decoder, aeConfig.languageModelPrior, aeConfig.endOfText) = (.autoregressive, 0.5, tokenizer.endOfTextID)
        let autoencoder = LatentAutoencoder(aeConfig, languageModel: gpt, generator: &rng)
        var config = LatentDiffusionConfig()
        (config.network.latents, config.network.latentWidth, config.network.width) = (4, 8, 16)
        (config.network.layers, config.network.heads, config.network.contextWidth) = (1, 2, 8)
        let system = LatentDiffusion(config: config, denoiser: Denoiser(config.network, generator: &rng), autoencoder: autoencoder)
        let other = GPT(GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 48, layers: 1, heads: 2, width: 8), generator: &rng)
        return (system, tokenizer, other)
    }

    func makeEvaluation(_ plan: GenerationEvaluation.Plan, baselines: Bool = true) -> GenerationEvaluation {
        let (system, tokenizer, other) = Self.toySystem()
        return GenerationEvaluation(
            system: system, tokenizer: tokenizer, trainDocuments: Array(Self.documents.prefix(24)),
            heldOutDocuments: Array(Self.documents.suffix(6)), passageSeed: 1,
            baselines: baselines ? [(name: "AR LM small", model: other)] : [], plan: plan)
    }

    var smallPlan: GenerationEvaluation.Plan {
        var plan = GenerationEvaluation.Plan()
        (plan.samples, plan.seeds, plan.clusters) = (4, 2, 2)
        plan.loop = GenerationRequest(steps: 3)
        (plan.languageModelPriors, plan.decodeTopP) = ([0], [0.9])
        (plan.sweepSteps, plan.sweepSamples) = ([1, 2], 4)
        (plan.sweepGuidance, plan.prompts) = ([1, 2], 3)
        (plan.gaussianPassages, plan.estimateStep) = (8, 1)
        return plan
    }

    func testPlanMakesEveryRowSweepPointAndContinuation() throws {
        let results = try makeEvaluation(smallPlan).run(command: "test")
        XCTAssertEqual(results.command, "test")
        XCTAssertEqual(
            results.rows.map(\.name),
            [
                "human (held-out)",
                "diffusion (3 ddpm steps, greedy decoding, LM prior 0.5)",
                "diffusion, the same runs' x0 estimates after 1 of 3 steps (greedy decoding, LM prior 0.5)",
                "diffusion (3 ddpm steps, decoded with top-p 0.9, LM prior 0.5)",
                "diffusion (3 ddpm steps, greedy decoding, LM prior 0.0)",
                "diffusion (3 ddpm steps, parallel decoder)",
                "control: Gaussian latents, no loop (greedy decoding, LM prior 0.5)",
                "control: the latents' Gaussian (8 training passages), no loop (greedy decoding, LM prior 0.5)",
                "LM alone (the frozen LM, top-p 0.95)",
                "AR LM small (top-p 0.95)",
                "LM alone, whole-sentence passages from its stories (top-p 0.95)"
            ])
        for row in results.rows.dropFirst() {
            XCTAssertEqual(row.seeds, 2, row.name)
            XCTAssertEqual(row.samples, 4, row.name)
            XCTAssertFalse(row.examples.isEmpty, row.name)
            XCTAssertTrue(row.mean["distinct_2"]!.isFinite, row.name)
        }
        let decodedFromLatents = results.rows.filter { $0.name.hasPrefix("diffusion") || $0.name.hasPrefix("control") }
        XCTAssertTrue(decodedFromLatents.allSatisfy { $0.mean[GenerationResults.Row.latentDistance] != nil })
        XCTAssertEqual(results.stepsSweep.map(\.steps), [1, 2])
        XCTAssertEqual(results.prompts, 3)
        XCTAssertEqual(
            results.continuation.map(\.system),
            [
                "diffusion, greedy decoding", "diffusion, greedy decoding",
                "diffusion, decoded with top-p 0.9", "diffusion, decoded with top-p 0.9",
                "LM alone (the frozen LM, top-p 0.95)", "AR LM small (top-p 0.95)"
            ])
        XCTAssertEqual(results.continuation.map(\.guidance), [1, 2, 1, 2, nil, nil])
    }

    func testSameSeedsSameFigures() throws {
        var plan = smallPlan
        plan.diffusionOnly = true
        let first = try makeEvaluation(plan).run(command: "a"), second = try makeEvaluation(plan).run(command: "b")
        XCTAssertEqual(first.rows.map(\.name), second.rows.map(\.name))
        XCTAssertEqual(first.rows.last?.name.hasPrefix("control: the latents' Gaussian"), true, "diffusion only: no baselines")
        XCTAssertTrue(first.stepsSweep.isEmpty && first.continuation.isEmpty)
        for (a, b) in zip(first.rows, second.rows) {
            XCTAssertEqual(a.mean, b.mean, a.name)
            XCTAssertEqual(a.examples, b.examples, a.name)
        }
    }

    /// Without the controls, the other rows are the same rows with the same figures.
    func testControlsCanBeLeftOut() throws {
        var plan = smallPlan
        plan.diffusionOnly = true
        let with = try makeEvaluation(plan).run(command: "a")
        plan.controls = false
        let without = try makeEvaluation(plan).run(command: "b")
        XCTAssertEqual(with.rows.filter { $0.name.hasPrefix("control") }.count, 2)
        XCTAssertEqual(without.rows.map(\.name), with.rows.filter { !$0.name.hasPrefix("control") }.map(\.name))
        for (a, b) in zip(without.rows, with.rows.filter { !$0.name.hasPrefix("control") }) { XCTAssertEqual(a.mean, b.mean, a.name) }
    }

    func testBadPlansAreRefused() {
        var plan = smallPlan
        plan.estimateStep = 3
        XCTAssertThrowsError(try makeEvaluation(plan).run(command: "")) {
            XCTAssertEqual("\($0)", "the estimate step must be between 0 (off) and the steps − 1 (2), got 3")
        }
        plan = smallPlan
        plan.decodeTopP = [1.5]
        XCTAssertThrowsError(try makeEvaluation(plan).run(command: "")) {
            XCTAssertEqual("\($0)", "decode_top_p must be in (0, 1], got 1.5")
        }
        plan = smallPlan
        plan.samples = 1
        XCTAssertThrowsError(try plan.validate())
    }
}

/// The reconstruction protocol as a library, on the same untrained toy autoencoder: its metrics are
/// `ReconstructionMetrics` of its own decode, its figures carry the settings and statistics, and it repeats.
final class ReconstructionEvaluationTests: XCTestCase {
    func testMetricsAreThoseOfItsOwnDecodeAndRepeat() throws {
        let (system, tokenizer, _) = GenerationEvaluationTests.toySystem()
        let passages = try ["Tom had a red ball.", "Sue liked to play.", "One day it was gone."].map {
            try tokenizer.encode($0).map(Int32.init)
        }
        var evaluation = ReconstructionEvaluation(autoencoder: system.autoencoder, tokenizer: tokenizer)
        evaluation.languageModelPrior = 0
        let result = try evaluation.run(passages)
        let expected = ReconstructionMetrics(
            referenceTokens: passages.map { $0.map(Int.init) },
            reconstructedTokens: try result.reconstructedTexts.map { try tokenizer.encode($0) },
            referenceTexts: result.referenceTexts, reconstructedTexts: result.reconstructedTexts)
        XCTAssertEqual(result.metrics.bleu4, expected.bleu4)
        XCTAssertEqual(result.metrics.rougeL, expected.rougeL)
        XCTAssertEqual(result.referenceTexts, ["Tom had a red ball.", "Sue liked to play.", "One day it was gone."])
        XCTAssertEqual(result.figures["passages"], 3)
        XCTAssertEqual(result.figures["lm_prior"], 0)
        XCTAssertNotNil(result.figures["val_loss_shuffled"], "the autoencoder's diagnostics are among the figures")
        var again = try evaluation.run(passages).figures, first = result.figures
        (again["passages_per_second"], first["passages_per_second"]) = (nil, nil)
        XCTAssertEqual(again, first)
        evaluation.noise = 0.5
        XCTAssertEqual(try evaluation.run(passages).figures["noise"], 0.5)
    }
}
