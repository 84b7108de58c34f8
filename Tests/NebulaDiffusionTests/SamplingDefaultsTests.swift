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
        (aeConfig.decoder, aeConfig.languageModelPrior) = (.autoregressive, 0.5)
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

        var older = object                                 // a config written before the key existed
        older.removeValue(forKey: "sampling")
        let decoded = try JSONDecoder().decode(LatentDiffusionConfig.self, from: JSONSerialization.data(withJSONObject: older))
        XCTAssertNil(decoded.sampling)
    }

    func testCallersValuesWinThenTheBundlesThenTheDecodersOwn() {
        let (bundled, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 0.2, languageModelPrior: 1.4))
        XCTAssertEqual(bundled.noiseScale(nil), 0.2)
        XCTAssertEqual(bundled.noiseScale(0.9), 0.9)
        XCTAssertEqual(bundled.languageModelPrior(nil), 1.4)
        XCTAssertEqual(bundled.languageModelPrior(0), 0)
        let (plain, _) = tinySystem(sampling: nil)
        XCTAssertEqual(plain.noiseScale(nil), 1)
        XCTAssertEqual(plain.languageModelPrior(nil), 0.5, "without a bundle default, the λ the decoder was trained with")
    }

    func testSamplerUsesTheBundlesNoiseScale() {
        let (system, _) = tinySystem(sampling: SamplingDefaults(noiseScale: 0.2))
        func sample(_ scale: Float?) -> [Float] {
            var generator = SeededGenerator(seed: 9)
            return withNoGrad { system.sample(count: 2, steps: 6, noiseScale: scale, generator: &generator).data }
        }
        XCTAssertEqual(sample(nil), sample(0.2))
        XCTAssertNotEqual(sample(nil), sample(1))
    }

    func testSamplerRenormalisesEstimatesUnlessTheBundleOrTheCallerSaysNot() {
        let (system, _) = tinySystem(sampling: SamplingDefaults(renormalizeEstimates: false))
        func sample(_ renormalize: Bool?) -> [Float] {
            var generator = SeededGenerator(seed: 9)
            return withNoGrad { system.sample(count: 2, steps: 6, renormalizeEstimates: renormalize, generator: &generator).data }
        }
        XCTAssertEqual(sample(nil), sample(false))
        XCTAssertNotEqual(sample(nil), sample(true))
        let (plain, _) = tinySystem(sampling: nil)
        var first = SeededGenerator(seed: 9), second = SeededGenerator(seed: 9)
        XCTAssertEqual(withNoGrad { plain.sample(count: 2, steps: 6, generator: &first).data },
                       withNoGrad { plain.sample(count: 2, steps: 6, renormalizeEstimates: true, generator: &second).data },
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
        XCTAssertEqual(try LatentDiffusion.load(from: diffusion).noiseScale(nil), 1.3)
    }
}
