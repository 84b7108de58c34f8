import NebulaModels

/// What a caller asks of one generation — the loop and the decode of its latents — as the command line or
/// a request gives it: a nil setting takes the bundle's default (its config's `sampling`).
///
/// ```swift
/// var request = GenerationRequest(steps: 25)
/// request.languageModelPrior = 1.2
/// let config = try system.configuration(for: request)   // resolved once, then passed whole
/// let z = system.sample(count: 4, config, generator: &rng)   // [4, K, d]
/// ```
public struct GenerationRequest: Equatable, Sendable {
    /// Denoising steps.
    public var steps: Int
    /// The reverse-process sampler (nil: the bundle's, ddpm unless its denoiser was distilled for another).
    public var sampler: SamplerKind?
    /// Classifier-free guidance weight of conditional generation (1: none).
    public var guidance: Float
    /// The ddpm sampler's noise temperature (nil: the bundle's default, else 1).
    public var noiseScale: Float?
    /// Whether x0 estimates are renormalised to the encoder's set (nil: the bundle's default, else yes).
    public var renormalizeEstimates: Bool?
    /// The LM prior λ of the final decode (nil: the bundle's default, else the λ the decoder was trained with).
    public var languageModelPrior: Float?
    /// Nucleus sampling of the final decode (nil: greedy).
    public var decodeTopP: Float?
    /// The decoder of the final latent (nil: the bundle's default, else the autoencoder's own).
    public var decoder: PassageDecoder?

    public init(
        steps: Int = 50, sampler: SamplerKind? = nil, guidance: Float = 1, noiseScale: Float? = nil,
        renormalizeEstimates: Bool? = nil, languageModelPrior: Float? = nil, decodeTopP: Float? = nil,
        decoder: PassageDecoder? = nil
    ) {
        self.steps = steps
        self.sampler = sampler
        self.guidance = guidance
        self.noiseScale = noiseScale
        self.renormalizeEstimates = renormalizeEstimates
        self.languageModelPrior = languageModelPrior
        self.decodeTopP = decodeTopP
        self.decoder = decoder
    }
}

/// A request's problem: the field as a request spells it (`noise_scale`, `decode_top_p`, …) and what is wrong.
public struct GenerationRequestError: Error, CustomStringConvertible, Equatable {
    public let field: String
    /// "must be in [0, 4], got 5.0"
    public let problem: String
    public var description: String { "\(field) \(problem)" }
}

extension GenerationRequest {
    /// Throws on a setting out of range or one that would be ignored (a noise scale for ddim, which draws no noise).
    public func validate() throws {
        func fail(_ field: String, _ problem: String) -> GenerationRequestError { GenerationRequestError(field: field, problem: problem) }
        guard steps >= 1 else { throw fail("steps", "must be at least 1, got \(steps)") }
        guard guidance >= 0 && guidance <= 20 else { throw fail("guidance", "must be in [0, 20], got \(guidance)") }
        if let problem = SamplingDefaults.rangeProblem(noiseScale, SamplingDefaults.noiseScaleRange) { throw fail("noise_scale", problem) }
        if let problem = SamplingDefaults.rangeProblem(languageModelPrior, SamplingDefaults.languageModelPriorRange) {
            throw fail("lm_prior", problem)
        }
        if let p = decodeTopP, !(p > 0 && p <= 1) { throw fail("decode_top_p", "must be in (0, 1], got \(p)") }
        if sampler == .ddim, let scale = noiseScale, scale != 1 {
            throw fail("noise_scale", "applies to the ddpm sampler; ddim draws no noise (got \(scale) with ddim)")
        }
    }
}

/// Every setting of one generation, resolved against a bundle's defaults: what `LatentDiffusion.sample`
/// and `LatentDiffusion.decode` take, whole.
public struct GenerationConfig: Equatable, Sendable {
    public var steps: Int
    public var sampler: SamplerKind
    public var guidance: Float
    /// The ddpm sampler's noise temperature (1 for ddim, which draws no noise).
    public var noiseScale: Float
    public var renormalizeEstimates: Bool
    /// The LM prior λ of the autoregressive decoder (0 for a parallel decoder, which has no LM to fuse).
    public var languageModelPrior: Float
    /// Greedy (temperature 0) or nucleus sampling of the final decode.
    public var decoding: SamplingOptions
    /// The decoder of the final latent.
    public var decoder: PassageDecoder

    /// The loop in a few words, for reports and logs: "50 ddpm steps, noise ×1.6".
    public var loopDescription: String {
        "\(steps) \(sampler.rawValue) steps" + (noiseScale == 1 ? "" : ", noise ×\(noiseScale)")
            + (renormalizeEstimates ? "" : ", estimates not renormalised")
    }
}

extension LatentDiffusion {
    /// Resolves `request` against this bundle's sampling defaults, once (throws what `request.validate()` throws, and
    /// for a distilled denoiser a step count or sampler other than the ones it was distilled for). An infill
    /// (`infilling`) takes the bundle's infill LM prior (`sampling.infill.lm_prior`) where the request gives none.
    public func configuration(for request: GenerationRequest, infilling: Bool = false) throws -> GenerationConfig {
        try request.validate()
        let defaults = config.sampling ?? SamplingDefaults()
        let sampler = request.sampler ?? config.distillation?.sampler ?? .ddpm
        if let distilled = config.distillation {
            guard request.steps == distilled.steps else {
                throw GenerationRequestError(
                    field: "steps", problem: "must be \(distilled.steps) for this distilled denoiser, got \(request.steps)")
            }
            guard sampler == distilled.sampler else {
                throw GenerationRequestError(
                    field: "sampler", problem: "must be \(distilled.sampler.rawValue) for this distilled denoiser, got \(sampler.rawValue)")
            }
        }
        let decoder = request.decoder ?? defaults.decoder ?? (autoencoder.autoregressive != nil ? .autoregressive : .parallel)
        if decoder == .onePass && onePass == nil {
            throw GenerationRequestError(
                field: "decoder", problem: "one-pass needs a bundle with a one-pass decoder (onepass/); this one has none")
        }
        return GenerationConfig(
            steps: request.steps, sampler: sampler, guidance: request.guidance,
            noiseScale: sampler == .ddim
                ? 1 : request.noiseScale ?? config.distillation?.noiseScale ?? defaults.noiseScale(steps: request.steps) ?? 1,
            renormalizeEstimates: request.renormalizeEstimates ?? defaults.renormalizeEstimates ?? true,
            languageModelPrior: languageModelPrior(request, defaults: defaults, decoder: decoder, infilling: infilling),
            decoding: request.decodeTopP.map { SamplingOptions(temperature: 1, topP: $0) } ?? SamplingOptions(temperature: 0),
            decoder: decoder)
    }

    /// The LM prior λ of `decoder`: for the autoregressive one, the request's, else the bundle's (of an infill, its
    /// infill λ first), else the one it was trained with; for the one-pass decoder, the request's, else none (the
    /// bundle's default is the autoregressive decoder's: on the one-pass decoder's drafts it makes them repeat
    /// themselves, docs/report/fewstep.md); for the parallel decoder, none (it has no LM to fuse).
    func languageModelPrior(_ request: GenerationRequest, defaults: SamplingDefaults, decoder: PassageDecoder, infilling: Bool) -> Float {
        switch decoder {
        case .autoregressive:
            return request.languageModelPrior ?? (infilling ? defaults.infill?.languageModelPrior : nil) ?? defaults.languageModelPrior
                ?? autoencoder.config.languageModelPrior
        case .onePass: return request.languageModelPrior ?? 0
        case .parallel: return 0
        }
    }
}

extension LatentDiffusion {
    /// How many loops an infill runs for each middle: `requested`, else the bundle's `sampling.infill.candidates`, else 1.
    public func infillCandidates(_ requested: Int?) -> Int {
        requested ?? config.sampling?.infill?.candidates ?? 1
    }
}
