import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// An infilling job's fixed parts: the prefix's and the suffix's latent vectors, held at every step, and the gap (its
/// prefix, suffix and length in tokens).
struct HeldInfill {
    let known: KnownLatents
    let gap: LatentDiffusion.Gap
}

/// A diffusion job in progress: its latents `[n, K, d]`, its own sampler and random stream, its condition.
final class DiffusionRun {
    let job: Job
    let parameters: DiffusionParameters
    /// The request's settings, resolved against the bundle's defaults.
    let config: GenerationConfig
    let promptTokens: Int
    let sampler: any DiffusionSampler
    let grid: [(time: Float, nextTime: Float)]
    var generator: SeededGenerator
    var z: Tensor
    var previousX0: Tensor?
    /// The prompt passage's latent, once per choice `[n, K, d]` (nil: unconditional).
    let condition: Tensor?
    /// Classifier guidance towards the request's label (nil: none).
    let steering: ClassifierGuidance?
    /// What an infilling job holds (nil: not an infill).
    let infill: HeldInfill?
    /// Steps done.
    var index = 0

    init(
        job: Job, parameters: DiffusionParameters, config: GenerationConfig, promptTokens: Int, sampler: any DiffusionSampler,
        generator: SeededGenerator, z: Tensor, condition: Tensor?, steering: ClassifierGuidance?,
        infill: HeldInfill? = nil
    ) {
        self.job = job
        self.parameters = parameters
        self.config = config
        self.promptTokens = promptTokens
        self.sampler = sampler
        grid = sampler.steps
        self.generator = generator
        self.z = z
        self.condition = condition
        self.steering = steering
        self.infill = infill
    }

    var isDone: Bool { index >= grid.count }
    /// This run's rows at its current step.
    var rows: DenoisingRows {
        DenoisingRows(
            z: z, time: grid[index].time, previousX0: previousX0, condition: condition, guidance: config.guidance, known: infill?.known)
    }
}

/// Batched denoising: one denoiser pass a step over every waiting diffusion job — each at its own time,
/// with its own condition and guidance (`LatentDiffusion.modelOutputs`, the step the library's loop takes
/// too) — then each job's own sampler step, moved by its classifier guidance if it has a label. A job alone in the batch runs exactly the operations of
/// `LatentDiffusion.sample` with the same seed, so it returns the same text.
struct DiffusionBatcher {
    let system: LatentDiffusion
    let tokenizer: any Tokenizer
    let classifier: LatentClassifier?

    var latentShape: [Int] { [system.config.network.latents, system.config.network.latentWidth] }

    /// Resolves the request's settings, encodes the prompt's passage (the condition) or, with a suffix, the latent an
    /// infill holds, builds the classifier guidance of a label, draws the starting noise from the job's seed.
    func admit(_ job: Job, _ parameters: DiffusionParameters) throws -> DiffusionRun {
        let config: GenerationConfig  // the fields were validated when the request came; what the bundle refuses fails here
        do {
            config = try system.configuration(for: parameters.generation, infilling: parameters.suffix != nil)
        } catch let error as GenerationRequestError {
            throw ServeError.invalidField(error.field, error.description)
        }
        var condition: Tensor? = nil, infill: HeldInfill? = nil
        var promptTokens = 0
        var n = parameters.choices  // rows of the loop: an infill runs best_of of them
        if let suffix = parameters.suffix {
            n = parameters.bestOf ?? max(n, min(n * system.infillCandidates(nil), parameters.maxBestOf))
            infill = try held(prefix: parameters.prompt, suffix: suffix, gap: parameters.gap, choices: n)
            promptTokens = infill!.gap.prefix.count
        } else if !parameters.prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard system.denoiser.config.contextWidth > 0 else {
                throw ServeError.invalidField("prompt", "this diffusion model was trained without conditioning: send an empty prompt")
            }
            let ids = try tokenizer.encode(parameters.prompt)
            promptTokens = ids.count
            let passage = ids.suffix(system.autoencoder.config.maxLength).map(Int32.init)
            let latent = system.autoencoder.encode([passage])  // [1, K, d]
            condition = n == 1 ? latent : Tensor.concatenate([Tensor](repeating: latent, count: n), axis: 0)  // [n, K, d]
        }
        var steering: ClassifierGuidance? = nil
        if let label = parameters.label {
            guard let classifier else { throw ServeError.invalidField("label", "label needs a classifier, and this bundle has none") }
            steering = try ClassifierGuidance(classifier: classifier, label: label, scale: parameters.classifierScale)
        }
        var sampler = system.makeSampler(config)
        sampler.setTimesteps(config.steps, startTime: 1)
        var generator = SeededGenerator(seed: parameters.seed)
        let z = Tensor.randn([n] + latentShape, generator: &generator)  // [n, K, d]
        return DiffusionRun(
            job: job, parameters: parameters, config: config, promptTokens: promptTokens, sampler: sampler,
            generator: generator, z: z, condition: condition, steering: steering, infill: infill)
    }

    /// What an infill of `gap` tokens between `prefix` and `suffix` holds: the known vectors `LatentDiffusion.infill`
    /// holds, so a run with one choice takes its draws (one candidate, no resampling) and returns its middle for the seed.
    func held(prefix text: String, suffix: String, gap: Int, choices n: Int) throws -> HeldInfill {
        let prefix = try tokenizer.encode(text)
        let suffixText = LatentDiffusion.textAfterGap(suffix)
        let suffixTokens = try tokenizer.encode(suffixText)
        let length = system.autoencoder.config.maxLength
        guard gap >= 1, prefix.count + gap + suffixTokens.count <= length else {
            throw ServeError.invalidField(
                "suffix",
                "prompt (\(prefix.count) tokens) + max_tokens (\(gap)) + suffix (\(suffixTokens.count)) is longer than a passage (\(length) tokens)"
            )
        }
        let latent = system.heldLatents(prefix: prefix, suffix: suffixTokens, gap: gap)  // [1, K, d]
        let known = KnownLatents(
            latents: n == 1 ? latent : Tensor.concatenate([Tensor](repeating: latent, count: n), axis: 0),
            known: system.knownVectors(prefix: prefix.count, gap: gap))
        return HeldInfill(known: known, gap: LatentDiffusion.Gap(prefix: prefix, suffix: suffixTokens, length: gap))
    }

    /// One denoising step of every run: a single denoiser call over all their rows.
    func step(_ runs: [DiffusionRun]) {
        for run in runs {
            if let infill = run.infill {  // the known vectors at this step's noise level, as the library's loop holds them
                run.z = infill.known.imposed(
                    on: run.z, time: run.grid[run.index].time, schedule: system.config.schedule, generator: &run.generator)
            }
        }
        let outputs = system.modelOutputs(runs.map(\.rows))
        for (run, output) in zip(runs, outputs) {
            let (time, nextTime) = run.grid[run.index]
            let modelOutput =
                run.steering?.guided(
                    output, sample: run.z, time: time, schedule: system.config.schedule, objective: system.config.objective)
                ?? output
            let result = run.sampler.step(
                modelOutput: modelOutput, time: time, nextTime: nextTime, sample: run.z, generator: &run.generator)
            run.z = result.sample
            run.previousX0 = result.predictedX0
            run.index += 1
            if run.isDone, let infill = run.infill {
                run.z = infill.known.imposed(on: run.z, time: 0, schedule: system.config.schedule, generator: &run.generator)
            }
            let every = run.parameters.estimateEvery
            if every > 0, run.index % every == 0, !run.isDone {
                let texts = estimates(result.predictedX0, infill: run.infill).prefix(run.parameters.choices)  // an infill's first n of best_of loops
                run.job.send(.estimate(step: run.index, steps: run.grid.count, texts: Array(texts)))
            }
        }
    }

    /// The current x0 estimates as text, through the cheap parallel decoder (one pass, greedy); of an infill, the middle.
    func estimates(_ x0: Tensor, infill: HeldInfill? = nil) -> [String] {
        var greedy = SeededGenerator(seed: 0)
        guard let infill else { return system.autoencoder.decode(x0, decoder: .parallel, generator: &greedy).map(text) }
        let decoded = system.autoencoder.decode(
            x0, decoder: .parallel, prefixes: [[Int]](repeating: infill.gap.prefix, count: x0.shape[0]), generator: &greedy)
        return decoded.map { middleText($0, infill) }
    }

    /// The middle of a decoded infill, as `LatentDiffusion.infill` cuts it.
    func middleText(_ tokens: [Int], _ infill: HeldInfill) -> String {
        (try? tokenizer.decode(infill.gap.infill(decoded: tokens).middle)) ?? ""
    }

    /// The final texts of runs that finished together, by each run's decoder. Greedy runs are decoded
    /// in one batch per decoder and LM prior (greedy decoding draws nothing, so each row is its run's alone); runs with
    /// `decode_top_p` (sampled with their own seed) are decoded one by one.
    func completed(_ runs: [DiffusionRun]) -> [[CompletedChoice]] {
        var results = [[CompletedChoice]?](repeating: nil, count: runs.count)
        let greedy = runs.indices.filter { runs[$0].config.decoding.temperature <= 0 && runs[$0].infill == nil }
        let byDecode = Dictionary(grouping: greedy) { "\(runs[$0].config.decoder.rawValue) \(runs[$0].config.languageModelPrior)" }
        for members in byDecode.values {
            let z = members.count == 1 ? runs[members[0]].z : Tensor.concatenate(members.map { runs[$0].z }, axis: 0)  // [rows, K, d]
            var unused = SeededGenerator(seed: 0)
            var tokens = system.decode(z, runs[members[0]].config, generator: &unused)[...]
            for i in members {
                let n = runs[i].z.shape[0]
                results[i] = tokens.prefix(n).map { CompletedChoice(text: text($0), finishReason: .stop, tokens: $0.count) }
                tokens = tokens.dropFirst(n)
            }
        }
        for i in runs.indices where results[i] == nil { results[i] = completed(runs[i]) }
        return results.map { $0! }
    }

    /// The final texts of one run, nucleus-sampled with the run's seed and LM prior; of an infill, the middles, decoded
    /// after the prefix with the run's own generator (as `LatentDiffusion.infill` decodes), the `n` likeliest of its
    /// `best_of` loops in the order they ran.
    func completed(_ run: DiffusionRun) -> [CompletedChoice] {
        if let infill = run.infill {
            let decoded = system.autoencoder.decode(
                run.z, options: run.config.decoding, languageModelPrior: run.config.languageModelPrior,
                prefixes: [[Int]](repeating: infill.gap.prefix, count: run.z.shape[0]), generator: &run.generator)
            return system.likeliest(decoded.map(infill.gap.infill(decoded:)), count: run.parameters.choices).map {
                let middle = (try? tokenizer.decode($0.middle)) ?? ""
                return CompletedChoice(text: middle, finishReason: .stop, tokens: $0.middle.count)
            }
        }
        var generator = SeededGenerator(seed: run.parameters.seed)
        return system.decode(run.z, run.config, generator: &generator).map {
            CompletedChoice(text: text($0), finishReason: .stop, tokens: $0.count)
        }
    }

    func text(_ tokens: [Int]) -> String {
        (try? system.autoencoder.passageText(tokens, tokenizer: tokenizer)) ?? ""
    }
}
