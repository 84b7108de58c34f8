import Foundation
import NebulaDiffusion

/// The body of `POST /v1/completions`, as OpenAI's API has it, plus the diffusion fields (`steps`,
/// `guidance`, `sampler`, `decode_top_p`, `decoder`, `noise_scale`, `lm_prior`, and `label` / `classifier_scale`: steering towards
/// a label of the bundle's latent classifier; `suffix`: the text after a gap of `max_tokens` tokens, which the loop fills
/// — OpenAI's insertion — with `best_of` loops, the `n` likeliest kept). Unknown fields are ignored, as OpenAI-compatible
/// servers do.
public struct CompletionRequest: Decodable, Sendable {
    public var model: String
    /// The texts to continue (language model) or the passages to continue (diffusion); empty: unconditional.
    /// A JSON string is one prompt; a list gives `n` choices for each, indexed prompt by prompt as OpenAI does.
    public var prompts: [String] = [""]
    public var maxTokens: Int?
    public var temperature: Float?
    public var topP: Float?
    public var n: Int?
    public var seed: UInt64?
    public var stream: Bool?
    public var steps: Int?
    public var guidance: Float?
    public var sampler: String?
    public var decodeTopP: Float?
    /// The decoder of the final latent: `autoregressive`, `parallel` or `one-pass` (nil: the bundle's).
    public var decoder: String?
    public var noiseScale: Float?
    public var languageModelPrior: Float?
    public var renormalizeEstimates: Bool?
    /// A label of the bundle's classifier to steer the loop towards (classifier guidance).
    public var label: String?
    public var classifierScale: Float?
    /// Text that follows the completion (insertion, as OpenAI's `suffix`): the diffusion model fills the gap.
    public var suffix: String?
    /// Infilling: loops run, of which the `n` whose whole passages the frozen LM finds likeliest are returned (OpenAI's
    /// `best_of`; nil: `n` times the bundle's `sampling.infill.candidates`, at most the server's `--max-best-of` unless
    /// `n` is more). Streamed, the estimates are the first `n` loops'.
    public var bestOf: Int?

    enum CodingKeys: String, CodingKey {
        case model, prompt, maxTokens = "max_tokens", temperature, topP = "top_p", n, seed, stream, steps, guidance, sampler
        case decodeTopP = "decode_top_p", decoder, noiseScale = "noise_scale", languageModelPrior = "lm_prior"
        case renormalizeEstimates = "renormalize_estimates", label, classifierScale = "classifier_scale", suffix
        case bestOf = "best_of"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        if let text = try? c.decodeIfPresent(String.self, forKey: .prompt) {
            prompts = [text]
        } else if let list = try? c.decodeIfPresent([String].self, forKey: .prompt) {
            guard !list.isEmpty else { throw ServeError.invalidField("prompt", "prompt must not be an empty list") }
            prompts = list
        } else if c.contains(.prompt), try !c.decodeNil(forKey: .prompt) {
            throw ServeError.invalidField("prompt", "prompt must be a string or a list of strings")
        }
        maxTokens = try Self.integer(c, .maxTokens)
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Float.self, forKey: .topP)
        n = try Self.integer(c, .n)
        if let seed = try Self.integer(c, .seed) {
            guard seed >= 0 else { throw ServeError.invalidField("seed", "seed must be a non-negative integer, got \(seed)") }
            self.seed = UInt64(seed)
        }
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        steps = try Self.integer(c, .steps)
        guidance = try c.decodeIfPresent(Float.self, forKey: .guidance)
        sampler = try c.decodeIfPresent(String.self, forKey: .sampler)
        decodeTopP = try c.decodeIfPresent(Float.self, forKey: .decodeTopP)
        self.decoder = try c.decodeIfPresent(String.self, forKey: .decoder)
        noiseScale = try c.decodeIfPresent(Float.self, forKey: .noiseScale)
        languageModelPrior = try c.decodeIfPresent(Float.self, forKey: .languageModelPrior)
        renormalizeEstimates = try c.decodeIfPresent(Bool.self, forKey: .renormalizeEstimates)
        label = try c.decodeIfPresent(String.self, forKey: .label)
        classifierScale = try c.decodeIfPresent(Float.self, forKey: .classifierScale)
        suffix = try c.decodeIfPresent(String.self, forKey: .suffix)
        bestOf = try Self.integer(c, .bestOf)
    }

    /// An integer field: Foundation reports a fractional number given for an integer as malformed JSON,
    /// so the field is read again as a number to name it.
    static func integer(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let value = try? c.decode(Int.self, forKey: key) { return value }
        if let number = try? c.decode(Double.self, forKey: key) {
            throw ServeError.invalidField(key.stringValue, "\(key.stringValue) must be an integer, got \(number)")
        }
        throw ServeError.invalidField(key.stringValue, "\(key.stringValue) must be an integer")
    }

    /// Decodes a body; a decoding failure becomes a 400 naming the field (or saying the JSON is malformed).
    public static func decode(_ body: Data) throws -> CompletionRequest {
        do {
            return try JSONDecoder().decode(CompletionRequest.self, from: body)
        } catch let error as ServeError {
            throw error
        } catch let error as DecodingError {
            throw describe(error)
        }
    }

    static func describe(_ error: DecodingError) -> ServeError {
        func field(_ path: [any CodingKey]) -> String? {
            path.isEmpty ? nil : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            guard let name = field(context.codingPath) else { return .malformedJSON("the body must be a JSON object") }
            return .invalidField(name, "\(name) must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            let name = field(context.codingPath) ?? "body"
            return .invalidField(name, "\(name) must be \(typeName(type)), not null")
        case .keyNotFound(let key, _):
            return .invalidField(key.stringValue, "\(key.stringValue) is required")
        case .dataCorrupted(let context):
            if let name = field(context.codingPath) {
                return .invalidField(name, "\(name) has an invalid value: \(context.debugDescription)")
            }
            return .malformedJSON(context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription)
        @unknown default:
            return .malformedJSON("\(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default: return "a JSON object"
        }
    }
}

/// What the model worker runs: a validated request for one of the two models.
public enum GenerationJob: Sendable {
    case languageModel(LanguageModelParameters)
    case diffusion(DiffusionParameters)

    public var choices: Int {
        switch self {
        case .languageModel(let p): return p.choices
        case .diffusion(let p): return p.choices
        }
    }
}

/// A language-model completion: KV-cached sampling from the prompt.
public struct LanguageModelParameters: Sendable {
    public var prompt: String
    public var maxTokens: Int
    public var temperature: Float
    public var topP: Float
    public var choices: Int
    /// Choice i samples with seed + i.
    public var seed: UInt64
    /// Send each choice's text as it grows (streaming only).
    public var streamsTokens: Bool
}

/// A diffusion completion: the denoising loop, conditioned on the prompt's passage when there is one.
public struct DiffusionParameters: Sendable {
    public var prompt: String
    /// The loop's and the decode's settings, resolved against the bundle's defaults when the job starts.
    public var generation: GenerationRequest
    public var choices: Int
    public var seed: UInt64
    /// Send a decoded estimate every this many steps (streaming only; 0: none).
    public var estimateEvery: Int
    /// The classifier label to steer towards, and the guidance scale (nil: unsteered).
    public var label: String? = nil
    public var classifierScale: Float = 16
    /// Infilling: the text after the gap, and the gap's length in tokens (the prompt is the text before it).
    public var suffix: String? = nil
    public var gap = 12
    /// Infilling: loops run, the `choices` likeliest kept (nil: `choices` × the bundle's infill candidates, at most
    /// `maxBestOf` unless `choices` is more).
    public var bestOf: Int? = nil
    /// The server's cap on `best_of`, which the default keeps to as well.
    public var maxBestOf = 16
}

extension CompletionRequest {
    /// One job per prompt, each checked against the model and the server's caps (`n` times the number of
    /// prompts counts against the choices cap); `isDiffusion` says which model `model` names, `labels` the labels of the
    /// bundle's classifier (nil: it has none).
    public func jobs(isDiffusion: Bool, configuration: ServeConfiguration, labels: [String]? = nil) throws -> [GenerationJob] {
        let choices = n ?? 1
        guard choices >= 1 else { throw ServeError.invalidField("n", "n must be at least 1, got \(choices)") }
        guard choices * prompts.count <= configuration.maxChoices else {
            let asked = prompts.count == 1 ? "got \(choices)" : "got \(choices) for each of \(prompts.count) prompts"
            throw ServeError.invalidField("n", "n must be at most \(configuration.maxChoices) choices in all, \(asked)")
        }
        if stream == true && prompts.count > 1 {
            throw ServeError.invalidField("prompt", "a streamed request takes one prompt, got a list of \(prompts.count)")
        }
        return try prompts.map {
            try job(prompt: $0, choices: choices, isDiffusion: isDiffusion, configuration: configuration, labels: labels)
        }
    }

    func job(prompt: String, choices: Int, isDiffusion: Bool, configuration: ServeConfiguration, labels: [String]?) throws -> GenerationJob
    {
        if let topP, !(topP > 0 && topP <= 1) { throw ServeError.invalidField("top_p", "top_p must be in (0, 1], got \(topP)") }
        if let temperature, !(temperature >= 0 && temperature <= 2) {
            throw ServeError.invalidField("temperature", "temperature must be in [0, 2], got \(temperature)")
        }
        let seed = self.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        if !isDiffusion {
            for (field, present) in [
                ("steps", steps != nil), ("guidance", guidance != nil), ("sampler", sampler != nil), ("decode_top_p", decodeTopP != nil),
                ("decoder", decoder != nil),
                ("noise_scale", noiseScale != nil), ("lm_prior", languageModelPrior != nil),
                ("renormalize_estimates", renormalizeEstimates != nil), ("label", label != nil),
                ("classifier_scale", classifierScale != nil), ("suffix", suffix != nil), ("best_of", bestOf != nil)
            ] where present {
                throw ServeError.invalidField(field, "\(field) applies to the diffusion model only")
            }
            let maxTokens = self.maxTokens ?? 16
            guard maxTokens >= 1 else { throw ServeError.invalidField("max_tokens", "max_tokens must be at least 1, got \(maxTokens)") }
            guard maxTokens <= configuration.maxTokens else {
                throw ServeError.invalidField("max_tokens", "max_tokens must be at most \(configuration.maxTokens), got \(maxTokens)")
            }
            return .languageModel(
                LanguageModelParameters(
                    prompt: prompt, maxTokens: maxTokens, temperature: temperature ?? 1,
                    topP: topP ?? 1, choices: choices, seed: seed, streamsTokens: stream == true))
        }
        let steps = self.steps ?? 50
        guard steps <= configuration.maxSteps else {
            throw ServeError.invalidField("steps", "steps must be at most \(configuration.maxSteps), got \(steps)")
        }
        if let maxTokens, maxTokens < 1 { throw ServeError.invalidField("max_tokens", "max_tokens must be at least 1, got \(maxTokens)") }
        let kind: SamplerKind?  // nil: the bundle's
        if let sampler {
            guard let parsed = SamplerKind(rawValue: sampler.lowercased()) else {
                throw ServeError.invalidField(
                    "sampler", "sampler must be one of \(SamplerKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(sampler)'")
            }
            kind = parsed
        } else {
            kind = nil
        }
        var passageDecoder: PassageDecoder?  // nil: the bundle's
        if let decoder {
            guard let parsed = PassageDecoder(rawValue: decoder.lowercased()) else {
                throw ServeError.invalidField(
                    "decoder", "decoder must be one of \(PassageDecoder.allCases.map(\.rawValue).joined(separator: ", ")), got '\(decoder)'"
                )
            }
            passageDecoder = parsed
        }
        // top_p, when given to the diffusion model, means the final decode's nucleus (decode_top_p wins).
        let generation = GenerationRequest(
            steps: steps, sampler: kind, guidance: guidance ?? 2, noiseScale: noiseScale,
            renormalizeEstimates: renormalizeEstimates, languageModelPrior: languageModelPrior,
            decodeTopP: decodeTopP ?? topP, decoder: passageDecoder)
        do {
            try generation.validate()
        } catch let error as GenerationRequestError {
            throw ServeError.invalidField(error.field, error.description)
        }
        var parameters = DiffusionParameters(
            prompt: prompt, generation: generation, choices: choices, seed: seed, estimateEvery: stream == true ? max(1, steps / 10) : 0)
        if let suffix {
            guard !suffix.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ServeError.invalidField("suffix", "suffix must not be empty")
            }
            if let passageDecoder, passageDecoder != .autoregressive {
                throw ServeError.invalidField(
                    "decoder", "decoder \(passageDecoder.rawValue) cannot fill a gap: an infill is decoded autoregressively from its prefix"
                )
            }
            parameters.suffix = suffix
            parameters.gap = maxTokens ?? 12
            parameters.maxBestOf = configuration.maxBestOf
        }
        if let bestOf {
            guard suffix != nil else { throw ServeError.invalidField("best_of", "best_of applies to infilling: send suffix too") }
            guard bestOf >= choices else {
                throw ServeError.invalidField("best_of", "best_of must be at least n (\(choices)), got \(bestOf)")
            }
            guard bestOf <= configuration.maxBestOf else {
                throw ServeError.invalidField("best_of", "best_of must be at most \(configuration.maxBestOf), got \(bestOf)")
            }
            parameters.bestOf = bestOf
        }
        if let label {
            guard let labels else { throw ServeError.invalidField("label", "label needs a classifier, and this bundle has none") }
            guard labels.contains(label) else {
                throw ServeError.invalidField("label", "label must be one of \(labels.joined(separator: ", ")), got '\(label)'")
            }
            parameters.label = label
        }
        if let scale = classifierScale {
            guard label != nil else {
                throw ServeError.invalidField("classifier_scale", "classifier_scale steers towards a label: send label too")
            }
            guard scale >= 0 && scale <= 100 else {
                throw ServeError.invalidField("classifier_scale", "classifier_scale must be in [0, 100], got \(scale)")
            }
            parameters.classifierScale = scale
        }
        return .diffusion(parameters)
    }
}
