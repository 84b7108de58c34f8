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
    /// Set on a denoiser distilled for a few ddim steps (``DistillationTask``): it samples well at that count only.
    public var distillation: DistillationRecord?
    /// Probability that a training passage has a random span of its latent vectors known, the rest to denoise (a
    /// denoiser with `knownLatents`; the other passages have none known, so one model infills and generates).
    public var knownLatentsRate: Float = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case network, objective, schedule, conditionDropout = "condition_dropout"
        case selfConditioningRate = "self_conditioning_rate", emaDecay = "ema_decay", autoencoder, sampling, distillation
        case knownLatentsRate = "known_latents_rate"
    }

    /// Reads a `config.json`; a key that is absent keeps its default (configs written by an earlier version).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let found = try c.decodeIfPresent(T.self, forKey: key) { value = found }
        }
        try read(.network, &network); try read(.objective, &objective); try read(.schedule, &schedule)
        try read(.conditionDropout, &conditionDropout); try read(.selfConditioningRate, &selfConditioningRate)
        try read(.emaDecay, &emaDecay); try read(.autoencoder, &autoencoder)
        sampling = try c.decodeIfPresent(SamplingDefaults.self, forKey: .sampling)
        distillation = try c.decodeIfPresent(DistillationRecord.self, forKey: .distillation)
        try read(.knownLatentsRate, &knownLatentsRate)
    }
}

/// A bundle's recommended sampler settings, like a Hugging Face `generation_config.json`: what `generate`,
/// `edit`, `eval generation` and the server use unless a flag or request field says otherwise.
public struct SamplingDefaults: Codable, Equatable, Sendable {
    /// The ddpm sampler's noise temperature (1: the model's own distribution).
    public var noiseScale: Float?
    /// Noise temperatures for particular step counts (`"noise_scale_by_steps": {"4": 2.5, "50": 1.6}`): a loop of few
    /// steps wants more noise than a long one. Other counts interpolate linearly in log(steps) between the nearest
    /// entries, and take the end entries' values beyond them; without a table, `noiseScale` serves every count.
    public var noiseScaleBySteps: [Int: Float]?
    /// The LM prior λ of the autoregressive decoder's final decode (nil: the λ it was trained with).
    public var languageModelPrior: Float?
    /// Whether every x0 estimate is renormalised to the encoder's mean-0, variance-1 vectors (nil: yes).
    public var renormalizeEstimates: Bool?
    /// The decoder of the final latent (nil: the autoencoder's own).
    public var decoder: PassageDecoder?
    /// What infilling does otherwise (nil: as every other loop, one loop a middle).
    public var infill: InfillDefaults?

    public init(
        noiseScale: Float? = nil, noiseScaleBySteps: [Int: Float]? = nil, languageModelPrior: Float? = nil,
        renormalizeEstimates: Bool? = nil, decoder: PassageDecoder? = nil, infill: InfillDefaults? = nil
    ) {
        self.noiseScale = noiseScale
        self.noiseScaleBySteps = noiseScaleBySteps
        self.languageModelPrior = languageModelPrior
        self.renormalizeEstimates = renormalizeEstimates
        self.decoder = decoder
        self.infill = infill
    }

    /// The noise temperature of a loop of `steps` steps: from the table when there is one, else `noiseScale`.
    public func noiseScale(steps: Int) -> Float? {
        guard let table = noiseScaleBySteps, !table.isEmpty else { return noiseScale }
        let counts = table.keys.sorted()
        guard let upper = counts.firstIndex(where: { $0 >= steps }) else { return table[counts.last!] }
        guard upper > 0, counts[upper] != steps else { return table[counts[upper]] }
        let (a, b) = (counts[upper - 1], counts[upper])
        let w = Float((log(Double(steps)) - log(Double(a))) / (log(Double(b)) - log(Double(a))))
        return table[a]! + w * (table[b]! - table[a]!)
    }

    /// The range of the noise scale, wherever it is given: here, on the command line, in a request.
    public static let noiseScaleRange: ClosedRange<Float> = 0...4
    /// The range of the LM prior λ: wider than the noise scale's, since infilling is best near λ 4–8.
    public static let languageModelPriorRange: ClosedRange<Float> = 0...16

    /// "must be in [0, 4], got 5.0" when `value` lies outside `range`, else nil.
    public static func rangeProblem(_ value: Float?, _ range: ClosedRange<Float>) -> String? {
        guard let value, !range.contains(value) else { return nil }
        return "must be in [\(Int(range.lowerBound)), \(Int(range.upperBound))], got \(value)"
    }

    /// Every setting must lie in its range, every step count of the table be positive.
    public func validate() -> String? {
        if let problem = Self.rangeProblem(noiseScale, Self.noiseScaleRange) { return "sampling.noise_scale \(problem)" }
        if let problem = Self.rangeProblem(languageModelPrior, Self.languageModelPriorRange) { return "sampling.lm_prior \(problem)" }
        for (steps, value) in (noiseScaleBySteps ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard steps >= 1 else { return "sampling.noise_scale_by_steps: step counts must be positive, got \(steps)" }
            if let problem = Self.rangeProblem(value, Self.noiseScaleRange) { return "sampling.noise_scale_by_steps[\(steps)] \(problem)" }
        }
        if let problem = Self.rangeProblem(infill?.languageModelPrior, Self.languageModelPriorRange) {
            return "sampling.infill.lm_prior \(problem)"
        }
        if let candidates = infill?.candidates, candidates < 1 { return "sampling.infill.candidates must be positive, got \(candidates)" }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case noiseScale = "noise_scale", noiseScaleBySteps = "noise_scale_by_steps", languageModelPrior = "lm_prior"
        case renormalizeEstimates = "renormalize_estimates", decoder, infill
    }
}

/// How a bundle infills unless told otherwise (`"infill": {"lm_prior": 4, "candidates": 8}` in `sampling`): a middle
/// wants a stronger LM prior than a free passage, and is best chosen among several loops by the frozen LM's likelihood
/// of the whole passage (docs/report/control.md measures both).
public struct InfillDefaults: Codable, Equatable, Sendable {
    /// The LM prior λ of an infill's decode (nil: the bundle's `lm_prior`).
    public var languageModelPrior: Float?
    /// Loops a middle, one kept by the frozen LM's likelihood (nil: 1).
    public var candidates: Int?

    public init(languageModelPrior: Float? = nil, candidates: Int? = nil) {
        self.languageModelPrior = languageModelPrior
        self.candidates = candidates
    }

    enum CodingKeys: String, CodingKey { case languageModelPrior = "lm_prior", candidates }
}

/// A trained latent diffusion system: the denoiser (EMA weights), its process, and the autoencoder
/// with the frozen language model inside.
public final class LatentDiffusion {
    public let config: LatentDiffusionConfig
    public let denoiser: Denoiser
    public let autoencoder: LatentAutoencoder
    /// The bundle's one-pass decoder of the loop's latents, where it has one (`onepass/` beside `diffusion/`).
    public let onePass: OnePassDecoder?

    public init(config: LatentDiffusionConfig, denoiser: Denoiser, autoencoder: LatentAutoencoder, onePass: OnePassDecoder? = nil) {
        self.config = config
        self.denoiser = denoiser
        self.autoencoder = autoencoder
        self.onePass = onePass
    }

    /// Loads a diffusion folder and the autoencoder (and language model) it names; with `autoencoder`, that one
    /// instead (a second denoiser of the same bundle, e.g. a distilled one, shares the first's). A one-pass decoder
    /// folder beside it (``BundleFolders/onePass(beside:)``) comes with it.
    public static func load(from directory: URL, autoencoder loaded: LatentAutoencoder? = nil) throws -> LatentDiffusion {
        let config = try ModelFolder.readConfig(LatentDiffusionConfig.self, in: directory)
        let autoencoder = try loaded ?? LatentAutoencoder.load(from: ModelFolder.resolve(config.autoencoder, from: directory))
        let configURL = directory.appendingPathComponent(ModelFolder.config)
        guard config.network.latents == autoencoder.config.latents, config.network.latentWidth == autoencoder.config.latentWidth else {
            throw ModelFolderError(
                configURL,
                "the denoiser's latents (\(config.network.latents) × \(config.network.latentWidth)) do not match the autoencoder's (\(autoencoder.config.latents) × \(autoencoder.config.latentWidth))"
            )
        }
        if let problem = config.sampling?.validate() { throw ModelFolderError(configURL, problem) }
        guard config.network.width > 0, config.network.heads > 0, config.network.width % config.network.heads == 0,
            config.network.layers > 0
        else {
            throw ModelFolderError(configURL, "invalid denoiser sizes: width must be positive and divisible by heads")
        }
        let (w, network) = (Double(config.network.width), config.network)
        try ModelFolder.checkSize(
            of: configURL,
            needs: max(
                Double(network.layers) * w * w, Double(network.latents) * w,
                Double(network.latentWidth) * w, Double(network.contextWidth)),
            files: [SafeTensorsFile(contentsOf: directory.appendingPathComponent(ModelFolder.weights))])
        var rng = SeededGenerator.forLoading
        let denoiser = Denoiser(config.network, generator: &rng)
        try ModelFolder.loadWeights(denoiser, from: directory)
        denoiser.eval()
        let onePass = try BundleFolders.onePass(beside: directory).map { try OnePassDecoder.load(from: $0, autoencoder: autoencoder) }
        if config.sampling?.decoder == .onePass && onePass == nil {
            throw ModelFolderError(
                configURL, "sampling.decoder is one-pass, but there is no one-pass decoder (onepass/) beside this folder")
        }
        return LatentDiffusion(config: config, denoiser: denoiser, autoencoder: autoencoder, onePass: onePass)
    }

    /// The sampler of `config`, on this system's schedule and objective. Renormalising keeps every x0
    /// estimate on the encoder's set (mean 0, variance 1 per vector); it also turns the denoiser's cautious,
    /// shrunken early estimates into confident average latents, which narrows the samples.
    public func makeSampler(_ config: GenerationConfig) -> any DiffusionSampler {
        NebulaDiffusion.makeSampler(
            config.sampler, schedule: self.config.schedule, objective: self.config.objective,
            normalizeX0: config.renormalizeEstimates ? { layerNorm($0, weight: nil, bias: nil) } : nil,
            noiseScale: config.noiseScale)
    }

    /// Generates latents `[count, K, d]`: noise, then the reverse process of `config` (steps, sampler, noise
    /// scale, renormalisation). With a `condition` (latents `[count, K, d]` of the preceding passages),
    /// classifier-free guidance of weight `config.guidance` steers towards continuations. `start` denoises a
    /// latent noised to `start.time` instead (editing). `known` holds some latent vectors while the others are
    /// generated (infilling: ``infill(_:_:resample:candidates:selection:strength:steering:generator:onStep:)``). `steering` moves
    /// every step towards a classifier's label (``ClassifierGuidance``). `onStep` sees every x0 estimate.
    public func sample(
        count: Int, _ config: GenerationConfig, condition: Tensor? = nil,
        start: (latent: Tensor, time: Float)? = nil, known: KnownLatents? = nil, steering: ClassifierGuidance? = nil,
        generator: inout SeededGenerator, onStep: ((Int, SamplerOutput) -> Void)? = nil
    ) -> Tensor {
        let shape = [count, self.config.network.latents, self.config.network.latentWidth]
        var sampler = makeSampler(config)
        sampler.setTimesteps(config.steps, startTime: start?.time ?? 1)
        let noise = Tensor.randn(shape, generator: &generator)
        var initial = noise
        if let start {
            let time = Double(start.time)
            initial = start.latent * Float(self.config.schedule.alpha(time)) + noise * Float(self.config.schedule.sigma(time))
        }
        return sampler.sample(
            from: initial, known: known, generator: &generator,
            model: { z, t, previous in
                let output = self.modelOutputs([
                    DenoisingRows(z: z, time: t, previousX0: previous, condition: condition, guidance: config.guidance, known: known)
                ])[0]
                return steering?.guided(output, sample: z, time: t, schedule: self.config.schedule, objective: self.config.objective)
                    ?? output
            }, onStep: onStep)
    }

    /// The decoders this system has: the autoencoder's (autoregressive where it has one, parallel) and the
    /// bundle's one-pass decoder, if any.
    public var decoders: [PassageDecoder] {
        (autoencoder.autoregressive == nil ? [] : [.autoregressive]) + [.parallel] + (onePass == nil ? [] : [.onePass])
    }

    /// The passages (token ids, without the end of text) of latents `z: [B, K, d]`, decoded by `config.decoder`
    /// (or `decoder`): greedy or nucleus-sampled, the autoregressive decoder fused with the LM at
    /// `config.languageModelPrior`; `refine` rounds of latent-consistent decoding (the autoencoder's decoders).
    public func decode(
        _ z: Tensor, _ config: GenerationConfig, decoder: PassageDecoder? = nil,
        refine: Int = 0, generator: inout SeededGenerator
    ) -> [[Int]] {
        switch decoder ?? config.decoder {
        case .onePass:
            guard let onePass else { preconditionFailure("LatentDiffusion.decode: this bundle has no one-pass decoder") }
            return onePass.decode(
                z, autoencoder: autoencoder, languageModelPrior: config.languageModelPrior, options: config.decoding, generator: &generator)
        case .parallel:
            return autoencoder.decode(z, options: config.decoding, decoder: .parallel, refine: refine, generator: &generator)
        case .autoregressive:
            return autoencoder.decode(
                z, options: config.decoding, languageModelPrior: config.languageModelPrior, refine: refine, generator: &generator)
        }
    }
}
