import Foundation
import XCTest
import NebulaModels
import NebulaNN
import NebulaTensor
@testable import NebulaDiffusion

/// A bundle's `sampling` defaults (noise scale, LM prior): read from `config.json`, refused when out of
/// range, and used by the sampler and the decoder wherever the caller gives no value of its own.
final class SamplingDefaultsTests: XCTestCase {
    /// An untrained system small enough to build in milliseconds: the defaults, not the weights, are tested.
    func tinySystem(sampling: SamplingDefaults?) -> (LatentDiffusion, GPT) {
        var rng = SeededGenerator(seed: 3)
        let gpt = GPT(GPTConfig(vocabSize: 20, contextLength: 24, layers: 1, heads: 2, width: 16), generator: &rng)
        var aeConfig = AutoencoderConfig()
        (aeConfig.latents, aeConfig.latentWidth, aeConfig.width, aeConfig.heads) = (4, 8, 16, 2)
        (aeConfig.encoderLayers, aeConfig.decoderLayers, aeConfig.maxLength) = (1, 1, 8)
        (aeConfig.decoder, aeConfig.languageModelPrior, aeConfig.endOfText) = (.autoregressive, 0.5, 0)
        let ae = LatentAutoencoder(aeConfig, languageModel: gpt, generator: &rng)
        var config = LatentDiffusionConfig()
        (config.network.latents, config.network.latentWidth, config.network.width) = (4, 8, 16)
        (config.network.layers, config.network.heads, config.sampling) = (1, 2, sampling)
        return (LatentDiffusion(config: config, denoiser: Denoiser(config.network, generator: &rng), autoencoder: ae), gpt)
    }

    func testConfigReadsWithAndWithoutSampling() throws {
        let (system, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 1.3, languageModelPrior: 1.4, renormalizeEstimates: false))
        let json = try JSONEncoder().encode(system.config)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let sampling = try XCTUnwrap(object["sampling"] as? [String: Any], "\(object)")
        XCTAssertEqual((sampling["noise_scale"] as? Double).map(Float.init), 1.3)
        XCTAssertEqual((sampling["lm_prior"] as? Double).map(Float.init), 1.4)
        XCTAssertEqual(sampling["renormalize_estimates"] as? Bool, false)
        XCTAssertEqual(try JSONDecoder().decode(LatentDiffusionConfig.self, from: json), system.config)

        var older = object  // a config written before the key existed
        older.removeValue(forKey: "sampling")
        let decoded = try JSONDecoder().decode(LatentDiffusionConfig.self, from: JSONSerialization.data(withJSONObject: older))
        XCTAssertNil(decoded.sampling)
    }

    func testCallersValuesWinThenTheBundlesThenTheDecodersOwn() throws {
        let (bundled, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 0.2, languageModelPrior: 1.4))
        let defaults = try bundled.configuration(for: GenerationRequest())
        XCTAssertEqual(defaults.noiseScale, 0.2)
        XCTAssertEqual(defaults.languageModelPrior, 1.4)
        XCTAssertTrue(defaults.renormalizeEstimates)
        XCTAssertEqual(defaults.decoding, SamplingOptions(temperature: 0), "greedy unless decode_top_p is given")
        let asked = try bundled.configuration(
            for: GenerationRequest(
                noiseScale: 0.9, renormalizeEstimates: false,
                languageModelPrior: 0, decodeTopP: 0.8))
        XCTAssertEqual(asked.noiseScale, 0.9)
        XCTAssertEqual(asked.languageModelPrior, 0)
        XCTAssertFalse(asked.renormalizeEstimates)
        XCTAssertEqual(asked.decoding, SamplingOptions(temperature: 1, topP: 0.8))
        let (plain, _) = tinySystem(sampling: nil)
        let plainDefaults = try plain.configuration(for: GenerationRequest())
        XCTAssertEqual(plainDefaults.noiseScale, 1)
        XCTAssertEqual(plainDefaults.languageModelPrior, 0.5, "without a bundle default, the λ the decoder was trained with")
        XCTAssertEqual(plainDefaults.loopDescription, "50 ddpm steps")
        XCTAssertEqual(defaults.loopDescription, "50 ddpm steps, noise ×0.2")
    }

    func testDDIMTakesNoNoiseScale() throws {
        let (bundled, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 1.6))
        XCTAssertEqual(
            try bundled.configuration(for: GenerationRequest(sampler: .ddim)).noiseScale, 1,
            "the bundle's noise scale is the ddpm sampler's: ddim draws no noise")
        XCTAssertNoThrow(try bundled.configuration(for: GenerationRequest(sampler: .ddim, noiseScale: 1)))
        XCTAssertThrowsError(try bundled.configuration(for: GenerationRequest(sampler: .ddim, noiseScale: 1.6))) { error in
            XCTAssertEqual(
                error as? GenerationRequestError,
                GenerationRequestError(
                    field: "noise_scale", problem: "applies to the ddpm sampler; ddim draws no noise (got 1.6 with ddim)"))
        }
    }

    func testRequestsOutOfRangeAreRefusedNamingTheField() {
        let cases: [(GenerationRequest, String)] = [
            (GenerationRequest(steps: 0), "steps must be at least 1, got 0"),
            (GenerationRequest(guidance: 21), "guidance must be in [0, 20], got 21.0"),
            (GenerationRequest(noiseScale: -1), "noise_scale must be in [0, 4], got -1.0"),
            (GenerationRequest(languageModelPrior: 16.5), "lm_prior must be in [0, 16], got 16.5"),
            (GenerationRequest(decodeTopP: 0), "decode_top_p must be in (0, 1], got 0.0")
        ]
        let (system, _) = tinySystem(sampling: nil)
        for (request, message) in cases {
            XCTAssertThrowsError(try system.configuration(for: request)) { XCTAssertEqual("\($0)", message) }
        }
    }

    func sample(_ system: LatentDiffusion, _ request: GenerationRequest) throws -> [Float] {
        var generator = SeededGenerator(seed: 9)
        return system.sample(count: 2, try system.configuration(for: request), generator: &generator).data
    }

    func testSamplerUsesTheBundlesNoiseScale() throws {
        let (system, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 0.2))
        XCTAssertEqual(try sample(system, GenerationRequest(steps: 6)), try sample(system, GenerationRequest(steps: 6, noiseScale: 0.2)))
        XCTAssertNotEqual(try sample(system, GenerationRequest(steps: 6)), try sample(system, GenerationRequest(steps: 6, noiseScale: 1)))
    }

    func testSamplerRenormalisesEstimatesUnlessTheBundleOrTheCallerSaysNot() throws {
        let (system, _) = tinySystem(sampling: SamplingDefaults(renormalizeEstimates: false))
        XCTAssertEqual(
            try sample(system, GenerationRequest(steps: 6)),
            try sample(system, GenerationRequest(steps: 6, renormalizeEstimates: false)))
        XCTAssertNotEqual(
            try sample(system, GenerationRequest(steps: 6)),
            try sample(system, GenerationRequest(steps: 6, renormalizeEstimates: true)))
        let (plain, _) = tinySystem(sampling: nil)
        XCTAssertEqual(
            try sample(plain, GenerationRequest(steps: 6)), try sample(plain, GenerationRequest(steps: 6, renormalizeEstimates: true)),
            "without a bundle default, estimates are renormalised")
    }

    func testOutOfRangeDefaultIsRefusedOnLoad() throws {
        let (system, gpt) = tinySystem(sampling: SamplingDefaults(noiseScale: 9))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-sampling-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try gpt.save(to: folder.appendingPathComponent("lm"))
        try system.autoencoder.save(to: folder.appendingPathComponent("autoencoder"))
        let diffusion = folder.appendingPathComponent("diffusion")
        try ModelFolder.write(config: system.config, weights: system.denoiser, to: diffusion)
        XCTAssertThrowsError(try LatentDiffusion.load(from: diffusion)) { error in
            XCTAssertTrue("\(error)".contains("sampling.noise_scale must be in [0, 4], got 9.0"), "\(error)")
        }
        var fixed = system.config
        fixed.sampling = SamplingDefaults(noiseScale: 1.3)
        try ModelFolder.writeConfig(fixed, in: diffusion)
        XCTAssertEqual(try LatentDiffusion.load(from: diffusion).configuration(for: GenerationRequest()).noiseScale, 1.3)
    }

    /// A table of noise scales by step count: exact entries, log-linear between them, the ends beyond; JSON with
    /// string keys; a caller's noise scale still wins; bad entries are refused.
    func testNoiseScaleFollowsTheStepsTable() throws {
        let defaults = SamplingDefaults(noiseScale: 1.6, noiseScaleBySteps: [4: 2.5, 16: 2.0, 50: 1.6])
        XCTAssertEqual(defaults.noiseScale(steps: 4), 2.5)
        XCTAssertEqual(defaults.noiseScale(steps: 2), 2.5, "below the table: its first entry")
        XCTAssertEqual(defaults.noiseScale(steps: 100), 1.6, "above the table: its last entry")
        XCTAssertEqual(defaults.noiseScale(steps: 8)!, 2.25, accuracy: 1e-6, "half-way in log(steps) from 4 to 16")
        XCTAssertEqual(SamplingDefaults(noiseScale: 1.3).noiseScale(steps: 4), 1.3, "no table: the one scale")
        let json = try JSONEncoder().encode(defaults)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        XCTAssertEqual((object["noise_scale_by_steps"] as? [String: Double])?.keys.sorted(), ["16", "4", "50"])
        XCTAssertEqual(try JSONDecoder().decode(SamplingDefaults.self, from: json), defaults)

        let (system, _) = tinySystem(sampling: defaults)
        XCTAssertEqual(try system.configuration(for: GenerationRequest(steps: 4)).noiseScale, 2.5)
        XCTAssertEqual(try system.configuration(for: GenerationRequest(steps: 4, noiseScale: 1)).noiseScale, 1)
        XCTAssertEqual(
            SamplingDefaults(noiseScaleBySteps: [4: 5]).validate(), "sampling.noise_scale_by_steps[4] must be in [0, 4], got 5.0")
        XCTAssertEqual(
            SamplingDefaults(noiseScaleBySteps: [0: 1]).validate(), "sampling.noise_scale_by_steps: step counts must be positive, got 0")
    }

    /// An infill takes the bundle's infill λ and candidates (`sampling.infill`); a free passage keeps `lm_prior`; a
    /// caller's values win over both.
    func testInfillDefaultsApplyToInfillsOnly() throws {
        let defaults = SamplingDefaults(languageModelPrior: 1.4, infill: InfillDefaults(languageModelPrior: 6, candidates: 8))
        let json = try JSONEncoder().encode(defaults)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let infill = try XCTUnwrap(object["infill"] as? [String: Any], "\(object)")
        XCTAssertEqual(infill["lm_prior"] as? Double, 6)
        XCTAssertEqual(infill["candidates"] as? Int, 8)
        XCTAssertEqual(try JSONDecoder().decode(SamplingDefaults.self, from: json), defaults)

        let (system, _) = tinySystem(sampling: defaults)
        XCTAssertEqual(try system.configuration(for: GenerationRequest()).languageModelPrior, 1.4)
        XCTAssertEqual(try system.configuration(for: GenerationRequest(), infilling: true).languageModelPrior, 6)
        XCTAssertEqual(try system.configuration(for: GenerationRequest(languageModelPrior: 2), infilling: true).languageModelPrior, 2)
        XCTAssertEqual(system.infillCandidates(nil), 8)
        XCTAssertEqual(system.infillCandidates(3), 3)
        let (onlyPrior, _) = tinySystem(sampling: SamplingDefaults(languageModelPrior: 1.4))
        XCTAssertEqual(try onlyPrior.configuration(for: GenerationRequest(), infilling: true).languageModelPrior, 1.4)
        XCTAssertEqual(onlyPrior.infillCandidates(nil), 1)

        XCTAssertEqual(
            SamplingDefaults(infill: InfillDefaults(languageModelPrior: 20)).validate(),
            "sampling.infill.lm_prior must be in [0, 16], got 20.0")
        XCTAssertEqual(
            SamplingDefaults(infill: InfillDefaults(candidates: 0)).validate(), "sampling.infill.candidates must be positive, got 0")
    }
}
