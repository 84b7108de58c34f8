import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Everything a latent diffusion model folder records: the denoiser's shape, the diffusion process it
/// was trained for, and the autoencoder whose latent space it lives in (`config.json`).
public struct LatentDiffusionConfig: Codable, Equatable, Sendable {
    public var network = DenoiserConfig()
    public var objective: Objective = .v
    public var schedule = NoiseSchedule.cosine
    /// Probability of dropping the condition in training (classifier-free guidance).
    public var conditionDropout: Float = 0.1
    /// Probability of training with a self-conditioning estimate.
    public var selfConditioningRate: Float = 0.5
    public var emaDecay: Float = 0.999
    /// The autoencoder folder, relative to this folder (or absolute).
    public var autoencoder = "../autoencoder"
    /// How this system samples when a caller does not say (`sampling`; absent: noise scale 1 and the
    /// decoder's own LM prior).
    public var sampling: SamplingDefaults?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case network, objective, schedule, conditionDropout = "condition_dropout"
        case selfConditioningRate = "self_conditioning_rate", emaDecay = "ema_decay", autoencoder, sampling
    }
}

/// A bundle's recommended sampler settings, like a Hugging Face `generation_config.json`: what `generate`,
/// `edit`, `eval generation` and the server use unless a flag or request field says otherwise.
public struct SamplingDefaults: Codable, Equatable, Sendable {
    /// The ddpm sampler's noise temperature (1: the model's own distribution).
    public var noiseScale: Float?
    /// The LM prior λ of the autoregressive decoder's final decode (nil: the λ it was trained with).
    public var languageModelPrior: Float?
    /// Whether every x0 estimate is renormalised to the encoder's mean-0, variance-1 vectors (nil: yes).
    public var renormalizeEstimates: Bool?

    public init(noiseScale: Float? = nil, languageModelPrior: Float? = nil, renormalizeEstimates: Bool? = nil) {
        self.noiseScale = noiseScale
        self.languageModelPrior = languageModelPrior
        self.renormalizeEstimates = renormalizeEstimates
    }

    /// The range of the noise scale and the LM prior, wherever they are given: here, on the command line,
    /// in a request.
    public static let range: ClosedRange<Float> = 0...4

    /// Both settings must lie in `range`.
    public func validate() -> String? {
        for (name, value) in [("noise_scale", noiseScale), ("lm_prior", languageModelPrior)] {
            if let value, !Self.range.contains(value) { return "sampling.\(name) must be in [0, 4], got \(value)" }
        }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case noiseScale = "noise_scale", languageModelPrior = "lm_prior", renormalizeEstimates = "renormalize_estimates"
    }
}

/// A trained latent diffusion system: the denoiser (EMA weights), its process, and the autoencoder
/// with the frozen language model inside.
public final class LatentDiffusion {
    public let config: LatentDiffusionConfig
    public let denoiser: Denoiser
    public let autoencoder: LatentAutoencoder

    public init(config: LatentDiffusionConfig, denoiser: Denoiser, autoencoder: LatentAutoencoder) {
        self.config = config
        self.denoiser = denoiser
        self.autoencoder = autoencoder
    }

    /// Loads a diffusion folder and the autoencoder (and language model) it names.
    public static func load(from directory: URL) throws -> LatentDiffusion {
        let config = try ModelFolder.readConfig(LatentDiffusionConfig.self, in: directory)
        let aeURL = ModelFolder.resolve(config.autoencoder, from: directory)
        let autoencoder = try LatentAutoencoder.load(from: aeURL)
        let configURL = directory.appendingPathComponent(ModelFolder.config)
        guard config.network.latents == autoencoder.config.latents, config.network.latentWidth == autoencoder.config.latentWidth else {
            throw ModelFolderError(configURL, "the denoiser's latents (\(config.network.latents) × \(config.network.latentWidth)) do not match the autoencoder's (\(autoencoder.config.latents) × \(autoencoder.config.latentWidth))")
        }
        if let problem = config.sampling?.validate() { throw ModelFolderError(configURL, problem) }
        guard config.network.width > 0, config.network.heads > 0, config.network.width % config.network.heads == 0, config.network.layers > 0 else {
            throw ModelFolderError(configURL, "invalid denoiser sizes: width must be positive and divisible by heads")
        }
        let (w, network) = (Double(config.network.width), config.network)
        try ModelFolder.checkSize(of: configURL, needs: max(Double(network.layers) * w * w, Double(network.latents) * w,
                                                            Double(network.latentWidth) * w, Double(network.contextWidth)),
                                  files: [SafeTensorsFile(contentsOf: directory.appendingPathComponent(ModelFolder.weights))])
        var rng = SeededGenerator.forLoading
        let denoiser = Denoiser(config.network, generator: &rng)
        try ModelFolder.loadWeights(denoiser, from: directory)
        denoiser.eval()
        return LatentDiffusion(config: config, denoiser: denoiser, autoencoder: autoencoder)
    }

    /// The ddpm noise scale to sample with: `requested`, else the bundle's default, else 1.
    public func noiseScale(_ requested: Float?) -> Float { requested ?? config.sampling?.noiseScale ?? 1 }

    /// The sampler of `kind` on this system's schedule and objective, with the noise scale and the
    /// renormalisation of x0 estimates as requested, else the bundle's defaults. Renormalising keeps every
    /// estimate on the encoder's set (mean 0, variance 1 per vector); it also turns the denoiser's cautious,
    /// shrunken early estimates into confident average latents, which narrows the samples.
    public func makeSampler(_ kind: SamplerKind, noiseScale: Float? = nil, renormalizeEstimates: Bool? = nil) -> any DiffusionSampler {
        NebulaDiffusion.makeSampler(kind, schedule: config.schedule, objective: config.objective,
                                    normalizeX0: renormalizesEstimates(renormalizeEstimates) ? { layerNorm($0, weight: nil, bias: nil) } : nil,
                                    noiseScale: self.noiseScale(noiseScale))
    }

    /// Whether the sampler renormalises x0 estimates: `requested`, else the bundle's default, else yes.
    public func renormalizesEstimates(_ requested: Bool?) -> Bool {
        requested ?? config.sampling?.renormalizeEstimates ?? true
    }

    /// The LM prior of the final decode: `requested`, else the bundle's default, else the λ the
    /// autoregressive decoder was trained with.
    public func languageModelPrior(_ requested: Float?) -> Float {
        requested ?? config.sampling?.languageModelPrior ?? autoencoder.config.languageModelPrior
    }

    /// The model output for the sampler, with classifier-free guidance when a condition is given:
    /// `uncond + w·(cond − uncond)` from one batched pass over both.
    public func output(_ z: Tensor, time: Float, previousX0: Tensor?, condition: Tensor?, guidance: Float) -> Tensor {
        let b = z.shape[0]
        let selfCondition = config.network.selfConditioning ? previousX0 : nil
        guard let condition, denoiser.config.contextWidth > 0 else {
            return denoiser(z, times: [Float](repeating: time, count: b), selfCondition: selfCondition)
        }
        if guidance == 1 {
            return denoiser(z, times: [Float](repeating: time, count: b), selfCondition: selfCondition, context: condition)
        }
        let both = denoiser(Tensor.concatenate([z, z], axis: 0), times: [Float](repeating: time, count: 2 * b),
                            selfCondition: selfCondition.map { Tensor.concatenate([$0, $0], axis: 0) },
                            context: Tensor.concatenate([condition, condition], axis: 0),
                            dropContext: [Bool](repeating: false, count: b) + [Bool](repeating: true, count: b))
        let parts = both.split(axis: 0, sizes: [b, b])
        return classifierFreeGuidance(conditional: parts[0], unconditional: parts[1], weight: guidance)
    }

    /// Generates latents `[count, K, d]`: noise, then the reverse process with `steps` steps. With a
    /// `condition` (latents `[count, K, d]` of the preceding passages) and `guidance` w, classifier-free
    /// guidance steers towards continuations. `startFrom`/`startTime` denoise a partly noised latent
    /// instead (editing). `noiseScale` is the DDPM sampler's noise temperature and `renormalizeEstimates`
    /// keeps x0 estimates on the encoder's set (nil: the bundle's defaults). `onStep` sees every x0 estimate.
    public func sample(count: Int, steps: Int, sampler kind: SamplerKind = .ddpm, guidance: Float = 1,
                       condition: Tensor? = nil, startFrom: Tensor? = nil, startTime: Float = 1, noiseScale: Float? = nil,
                       renormalizeEstimates: Bool? = nil,
                       generator: inout SeededGenerator, onStep: ((Int, SamplerOutput) -> Void)? = nil) -> Tensor {
        let shape = [count, config.network.latents, config.network.latentWidth]
        var sampler = makeSampler(kind, noiseScale: noiseScale, renormalizeEstimates: renormalizeEstimates)
        sampler.setTimesteps(steps, startTime: startTime)
        let noise = Tensor.randn(shape, generator: &generator)
        let initial: Tensor
        if let startFrom {
            let (a, s) = (Float(config.schedule.alpha(Double(startTime))), Float(config.schedule.sigma(Double(startTime))))
            initial = startFrom * a + noise * s
        } else {
            initial = noise
        }
        return sampler.sample(from: initial, generator: &generator, model: { z, t, previous in
            self.output(z, time: t, previousX0: previous, condition: condition, guidance: guidance)
        }, onStep: onStep)
    }
}
