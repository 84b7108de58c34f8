import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// Where the models come from: a bundle folder (`lm/`, `autoencoder/`, `diffusion/`) or a diffusion folder.
struct BundleOptions: ParsableArguments {
    @Option(help: "A model bundle folder (holding diffusion/) or a diffusion folder; default: models/tinystories.") var model: String?

    /// The shipped bundle: `models/tinystories` under the current folder, else beside the executable's package.
    static func defaultBundle() -> URL {
        let local = URL(fileURLWithPath: "models/tinystories")
        if FileManager.default.fileExists(atPath: local.path) { return local }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = folder.appendingPathComponent("models/tinystories")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return local
    }

    /// The diffusion folder, and the autoencoder and language-model folders its configs name.
    func folders() throws -> (diffusion: URL, autoencoder: URL, languageModel: URL) {
        let folders = try BundleFolders(resolving: model.map(fileURL) ?? Self.defaultBundle())
        return (folders.diffusion, folders.autoencoder, folders.languageModel)
    }

    func load() throws -> (LatentDiffusion, any Tokenizer) {
        let folders = try folders()
        return (try LatentDiffusion.load(from: folders.diffusion), try loadTokenizer(directory: folders.languageModel))
    }

    /// The system that runs `request`: the bundle's distilled denoiser for its step count, where the bundle has one
    /// (`distilled/N-steps/`) distilled with the request's sampler (or the request names none), else `load()`'s.
    func load(for request: GenerationRequest, distilled: Bool = true) throws -> (LatentDiffusion, any Tokenizer) {
        let folders = try BundleFolders(resolving: model.map(fileURL) ?? Self.defaultBundle())
        guard distilled, let folder = folders.distilled[request.steps] else { return try load() }
        let system = try LatentDiffusion.load(from: folder)
        guard request.sampler == nil || request.sampler == system.config.distillation?.sampler else { return try load() }
        printStatus("the denoiser distilled for \(request.steps) steps (\(folder.path); --undistilled: the bundle's own)")
        return (system, try loadTokenizer(directory: folders.languageModel))
    }
}

/// Sampling options shared by `generate` and `edit`.
struct LoopOptions: ParsableArguments, ChoosesExecution {
    @Option(help: "Denoising steps: the loop that trades compute for quality.") var steps = 50
    @Option(help: "ddpm (ancestral) or ddim (deterministic); default: ddpm, or the sampler a distilled denoiser was distilled for.")
    var sampler: SamplerKind?
    @Option(help: "Random seed of the first sample (sample i uses seed + i).") var seed: UInt64 = 0
    @Flag(help: "One JSON object per sample: text, seed, steps, seconds.") var json = false
    @Flag(help: "Print the decoded estimate every few steps: watch the passage condense out of noise.") var showSteps = false
    @Option(help: "Decode the final latent by sampling with this top-p (default: greedy). More varied text; see docs/report.")
    var decodeTopP: Float?
    @Option(help: ArgumentHelp(decoderHelp)) var decoder: PassageDecoder?
    @Option(help: ArgumentHelp(noiseScaleHelp)) var noiseScale: Float?
    @Option(name: .customLong("lm-prior"), help: ArgumentHelp(lmPriorHelp)) var languageModelPrior: Float?
    @Flag(inversion: .prefixedNo, help: ArgumentHelp(renormalizeHelp)) var renormalizeEstimates: Bool?
    @Flag(help: "Run the bundle's own denoiser even where the bundle has one distilled for --steps (distilled/N-steps).")
    var undistilled = false
    @OptionGroup var precision: PrecisionOptions

    func configure(_ context: inout ExecutionContext) { precision.configure(&context) }

    /// What these flags ask of the loop and the decode (nil settings: the bundle's defaults).
    func request(guidance: Float = 1) -> GenerationRequest {
        GenerationRequest(
            steps: steps, sampler: sampler, guidance: guidance, noiseScale: noiseScale,
            renormalizeEstimates: renormalizeEstimates, languageModelPrior: languageModelPrior, decodeTopP: decodeTopP,
            decoder: decoder)
    }

    func validate() throws { try validateFlags(request()) }
}

/// Validates a generation request, naming the flag: "--noise-scale must be in [0, 4], got 5.0".
func validateFlags(_ request: GenerationRequest) throws {
    do {
        try request.validate()
    } catch let error as GenerationRequestError {
        throw ValidationError("--\(error.field.replacingOccurrences(of: "_", with: "-")) \(error.problem)")
    }
}

/// The resolved settings of `request` for `system`, or the command's one-line error.
func resolve(_ request: GenerationRequest, for system: LatentDiffusion, infilling: Bool = false) throws -> GenerationConfig {
    do {
        return try system.configuration(for: request, infilling: infilling)
    } catch let error as GenerationRequestError {
        throw CommandError("--\(error.field.replacingOccurrences(of: "_", with: "-")) \(error.problem)")
    }
}

extension PassageDecoder: ExpressibleByArgument {}

/// `--decoder`'s help, the same on every command that decodes the loop's latents.
let decoderHelp =
    "The decoder of the loop's latents: autoregressive (the fluent one, token by token, fused with the LM), parallel (the autoencoder's, one pass) or one-pass (the bundle's onepass/ decoder, distilled from the autoregressive one; one pass). Default: the bundle's sampling.decoder, else autoregressive."

/// `--[no-]renormalize-estimates`' help, the same on every command that runs the loop.
let renormalizeHelp =
    "Renormalise every x0 estimate to the encoder's mean-0, variance-1 vectors (default: the bundle's sampling.renormalize_estimates, else on); off, the samples are more varied."

/// `--noise-scale`'s help, the same on every command that runs the loop.
let noiseScaleHelp =
    "Temperature of the ddpm sampler's noise: below 1 more fluent and less varied passages, above 1 the reverse (default: the bundle's sampling.noise_scale, else 1)."

/// `--select`'s help, on every command that infills.
let infillSelectionHelp =
    "Infilling with --candidates: which loop is kept, likelihood (the frozen LM's likelihood of the whole passage) or consensus (the middle that shares most tokens with the others'; minimum Bayes risk)."

/// `--lm-prior`'s help, the same on every command that decodes latents with the autoregressive decoder.
let lmPriorHelp =
    "Weight λ of the frozen LM's log-probabilities added to the autoregressive decoder's at every token (shallow fusion; 0: off; default: the λ the decoder was trained with, or for a bundle's samples its sampling.lm_prior, for its infills sampling.infill.lm_prior): more fluent text from vague latents, less faithful reconstruction."

func validateLanguageModelPrior(_ weight: Float?, flag: String = "--lm-prior") throws {
    if let problem = SamplingDefaults.rangeProblem(weight, SamplingDefaults.languageModelPriorRange) {
        throw ValidationError("\(flag) \(problem)")
    }
}

/// Decodes latents `[B, K, d]` to texts as `config` says (greedy, or sampled with `seed`); `decoder` picks the
/// parallel decoder of an autoregressive autoencoder.
func decodeTexts(
    _ z: Tensor, _ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig,
    decoder: PassageDecoder? = nil, refine: Int = 0, seed: UInt64 = 0
) throws -> [String] {
    var generator = SeededGenerator(seed: seed)
    return try system.decode(z, config, decoder: decoder, refine: refine, generator: &generator).map {
        try system.autoencoder.passageText($0, tokenizer: tokenizer)
    }
}

/// Runs the loop for one sample, printing intermediate decodes (greedy, at the same LM prior) with `--show-steps`.
func runLoop(
    _ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig, seed: UInt64, showSteps: Bool,
    condition: Tensor?, start: (latent: Tensor, time: Float)? = nil, steering: ClassifierGuidance? = nil
) throws -> (text: String, latent: Tensor, seconds: Double) {
    var generator = SeededGenerator(seed: seed)
    let begin = Date()
    let every = max(1, config.steps / 8)
    var greedy = config
    greedy.decoding = SamplingOptions(temperature: 0)
    let z = system.sample(count: 1, config, condition: condition, start: start, steering: steering, generator: &generator) { i, output in
        guard showSteps, (i + 1) % every == 0 || i == 0, i + 1 < config.steps else { return }
        let text = (try? decodeTexts(output.predictedX0, system, tokenizer, greedy).first) ?? ""
        printStatus(String(format: "  step %3d/%d │ ", i + 1, config.steps) + text.replacingOccurrences(of: "\n", with: " "))
    }
    let text = try decodeTexts(z, system, tokenizer, config, seed: seed)[0]
    return (text, z, Date().timeIntervalSince(begin))
}

func printSample(_ text: String, seed: UInt64, steps: Int, seconds: Double, json: Bool) throws {
    if json {
        let object: [String: Any] = ["text": text, "seed": seed, "steps": steps, "seconds": (seconds * 1000).rounded() / 1000]
        print(
            String(
                decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self
            ))
    } else {
        print(text)
    }
}

/// `nebula generate`: passages from noise through the denoising loop, decoded by the frozen LM.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate passages with the latent diffusion loop.",
        discussion:
            "Unconditional by default; --prompt continues a passage (classifier-free guidance --guidance); --story N writes N passages, each conditioned on the previous one; --prompt with --suffix fills the gap between them (infilling)."
    )

    @OptionGroup var bundle: BundleOptions
    @OptionGroup var loop: LoopOptions
    @Option(help: "Independent samples.") var samples = 3
    @Option(help: "A passage to continue.") var prompt: String?
    @Option(help: "Write a story of N passages, each conditioned on the one before.") var story: Int?
    @Option(help: "Classifier-free guidance weight for conditional passages (1 = none).") var guidance: Float = 2
    @Option(help: "Infilling: text that follows the gap; --prompt is the text before it, and the middle is generated.")
    var suffix: String?
    @Option(help: "Infilling: the gap's length in tokens.") var gap = 12
    @Option(help: "Infilling: how many times each step is taken, re-noised in between (RePaint resampling; 1: replacement only).")
    var resample = 1
    @Option(
        help:
            "Loops per sample: infilling keeps one by --select (default: the bundle's sampling.infill.candidates, else 1), --classifier the best by the classifier's p(label) of the decoded words (default 1)."
    ) var candidates: Int?
    @Option(name: .customLong("select"), help: ArgumentHelp(infillSelectionHelp)) var selection: InfillSelection = .likelihood
    @Option(help: "Infilling: where the loop starts, 1 from noise, below 1 from the LM's filler of the gap noised to it.")
    var strength: Float = 1
    @Option(help: "A latent classifier folder (`nebula train classifier`): steer every step towards --label.") var classifier: String?
    @Option(help: "The label to steer towards, one the classifier knows.") var label: String?
    @Option(help: "Classifier guidance scale (0: unguided; larger follows the label more, at some cost in fluency).")
    var classifierScale: Float = 16
    @Option(help: "What the classifier's gradient moves: estimate (the step's x0 estimate) or noisy-latent (the noise estimate).")
    var guidanceTarget: ClassifierGuidance.Target = .estimate

    func validate() throws {
        if suffix != nil {
            guard prompt != nil else { throw ValidationError("--suffix fills a gap after --prompt: give --prompt too") }
            guard story == nil else { throw ValidationError("--suffix and --story cannot be combined") }
            if let decoder = loop.decoder, decoder != .autoregressive {
                throw ValidationError(
                    "--decoder \(decoder.rawValue) cannot fill a gap: an infill is decoded autoregressively from its prefix")
            }
        }
        guard gap >= 1 else { throw ValidationError("--gap must be positive, got \(gap)") }
        guard resample >= 1 else { throw ValidationError("--resample must be positive, got \(resample)") }
        if let candidates, candidates < 1 { throw ValidationError("--candidates must be positive, got \(candidates)") }
        guard strength > 0 && strength <= 1 else { throw ValidationError("--strength must be in (0, 1], got \(strength)") }
        guard (classifier == nil) == (label == nil) else { throw ValidationError("--classifier and --label go together: give both") }
        guard classifierScale >= 0 else { throw ValidationError("--classifier-scale must be non-negative, got \(classifierScale)") }
    }

    /// The classifier guidance of `--classifier`/`--label`, checked against the bundle's latent space.
    func steering(for system: LatentDiffusion) throws -> ClassifierGuidance? {
        guard let classifier, let label else { return nil }
        let model = try LatentClassifier.load(from: fileURL(classifier))
        do {
            try model.check(reads: system.autoencoder)
            return try ClassifierGuidance(classifier: model, label: label, scale: classifierScale, target: guidanceTarget)
        } catch let error as LatentClassifierError {
            throw CommandError("--classifier \(classifier): \(error.message)")
        }
    }

    func run() throws {
        try reportingErrors {
            let (system, tokenizer) = try bundle.load(for: loop.request(guidance: guidance), distilled: !loop.undistilled)
            let config = try resolve(loop.request(guidance: guidance), for: system, infilling: suffix != nil)
            let steering = try steering(for: system)
            if let prompt, let suffix {
                return try infill(system, tokenizer, config, prefix: prompt, suffix: suffix, steering: steering)
            }
            var condition: Tensor? = nil
            if let prompt {
                guard system.denoiser.config.contextWidth > 0 else {
                    throw CommandError("this denoiser was trained without conditioning: drop --prompt")
                }
                condition = system.autoencoder.encode([
                    try passageTokens(prompt, tokenizer: tokenizer, limit: system.autoencoder.config.maxLength)
                ])
            }
            for i in 0..<samples {
                let seed = loop.seed + UInt64(i)
                if let story {
                    var previous = condition
                    var passages: [String] = prompt.map { [$0] } ?? []
                    var seconds = 0.0
                    for part in 0..<story {
                        // Each passage is conditioned on the latent the loop produced for the one before.
                        let result = try runLoop(
                            system, tokenizer, config, seed: seed &+ UInt64(part) &* 1000, showSteps: loop.showSteps, condition: previous,
                            steering: steering)
                        passages.append(result.text)
                        seconds += result.seconds
                        previous = result.latent
                        if !loop.json { print(result.text) }
                    }
                    if loop.json {
                        try printSample(passages.joined(separator: " "), seed: seed, steps: loop.steps, seconds: seconds, json: true)
                    }
                } else if let steering, let candidates, candidates > 1 {
                    var generator = SeededGenerator(seed: seed)
                    let begin = Date()
                    let tokens = system.steeredPassages(
                        count: 1, config, steering: steering, candidates: candidates, generator: &generator)[0]
                    let text = try system.autoencoder.passageText(tokens, tokenizer: tokenizer)
                    try printSample(text, seed: seed, steps: loop.steps, seconds: Date().timeIntervalSince(begin), json: loop.json)
                } else {
                    let result = try runLoop(
                        system, tokenizer, config, seed: seed, showSteps: loop.showSteps, condition: condition, steering: steering)
                    try printSample(result.text, seed: seed, steps: loop.steps, seconds: result.seconds, json: loop.json)
                }
                if !loop.json && i + 1 < samples { print("") }
            }
        }
    }
}

extension Generate {
    /// Prints `--samples` middles between `prefix` and `suffix`: the whole passage with the middle in brackets, or
    /// with `--json` one object per sample (`middle`, `text`, `seed`, `steps`, `seconds`).
    func infill(
        _ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig, prefix: String, suffix: String,
        steering: ClassifierGuidance?
    ) throws {
        let prefixTokens = try tokenizer.encode(prefix)
        let suffixText = LatentDiffusion.textAfterGap(suffix)
        let suffixTokens = try tokenizer.encode(suffixText)
        for i in 0..<samples {
            let seed = loop.seed + UInt64(i)
            var generator = SeededGenerator(seed: seed)
            let begin = Date()
            let every = max(1, config.steps / 8)
            let filled: [Infill]
            do {
                filled = try system.infill(
                    prefix: prefixTokens, suffix: suffixTokens, gap: gap, count: 1, config, resample: resample,
                    candidates: system.infillCandidates(candidates),
                    selection: selection, strength: strength, steering: steering,
                    generator: &generator
                ) { step, output in
                    guard loop.showSteps, (step + 1) % every == 0 || step == 0, step + 1 < config.steps else { return }
                    var greedy = SeededGenerator(seed: 0)
                    let estimate = system.autoencoder.decode(
                        output.predictedX0, languageModelPrior: config.languageModelPrior, prefixes: [prefixTokens],
                        maxTokens: prefixTokens.count + gap, generator: &greedy)[0]
                    let middle = (try? tokenizer.decode(Array(estimate.dropFirst(prefixTokens.count)))) ?? ""
                    printStatus(
                        String(format: "  step %3d/%d │ ", step + 1, config.steps) + middle.replacingOccurrences(of: "\n", with: " "))
                }
            } catch let error as InfillError {
                throw CommandError("--prompt, --gap, --suffix: \(error.errorDescription ?? "\(error)")")
            }
            let seconds = Date().timeIntervalSince(begin)
            let middle = try tokenizer.decode(filled[0].middle), whole = try tokenizer.decode(filled[0].passage)
            if loop.json {
                let object: [String: Any] = [
                    "middle": middle, "text": whole, "seed": seed, "steps": loop.steps, "seconds": (seconds * 1000).rounded() / 1000
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(prefix + " [" + middle.trimmingCharacters(in: .whitespaces) + "]" + suffixText)
                if i + 1 < samples { print("") }
            }
        }
    }
}

/// `nebula edit`: noise a passage's latent part-way and denoise it again.
struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a passage: noise its latent to time --strength and run the loop back (keeps the gist).")

    @OptionGroup var bundle: BundleOptions
    @OptionGroup var loop: LoopOptions
    @Argument(help: "The passage to rewrite.") var text: String
    @Option(help: "How far to noise, 0–1 (0 keeps the passage, 1 forgets it).") var strength: Float = 0.5
    @Option(help: "Rewrites.") var samples = 3

    func validate() throws { guard strength > 0 && strength <= 1 else { throw ValidationError("--strength must be in (0, 1]") } }

    func run() throws {
        try reportingErrors {
            let (system, tokenizer) = try bundle.load()
            let z = system.autoencoder.encode([try passageTokens(text, tokenizer: tokenizer, limit: system.autoencoder.config.maxLength)])
            var request = loop.request()
            request.steps = max(1, Int((Float(loop.steps) * strength).rounded()))
            let config = try resolve(request, for: system)
            for i in 0..<samples {
                let seed = loop.seed + UInt64(i)
                let result = try runLoop(
                    system, tokenizer, config, seed: seed, showSteps: loop.showSteps, condition: nil, start: (z, strength))
                try printSample(result.text, seed: seed, steps: config.steps, seconds: result.seconds, json: loop.json)
            }
        }
    }
}
