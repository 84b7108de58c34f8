import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaEval
import NebulaModels
import NebulaTensor
import NebulaText

/// `nebula eval generation`: does the loop pay? The diffusion system beside human text and autoregressive
/// baselines, then quality against loop steps and guidance.
struct EvaluateGeneration: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generation",
        abstract: "Score generated passages against held-out human text, beside autoregressive baselines.",
        discussion: """
        Rows: held-out human passages; the diffusion system (--samples per seed, --seeds seeds, mean ± std); \
        the bundle's own LM sampled with top-p; every --ar-lm (e.g. an LM of the whole system's parameter \
        count). Figures: MAUVE against a disjoint held-out reference (features: the bundle LM's mean-pooled \
        final hidden states), perplexity under the bundle LM, diversity, distinct-n, unique openings, \
        4-gram memorization against the training corpus. Then the loop experiment: the same figures at each \
        of --sweep-steps, and continuations of held-out prompts (ROUGE-L and MAUVE against the true next \
        passage) at each --sweep-guidance. Writes everything to --out as JSON; `nebula report` renders it.
        """
    )

    @OptionGroup var bundle: BundleOptions
    @Option(help: "Samples per seed for each row.") var samples = 1000
    @Option(help: "Seeds per row (mean ± std over them).") var seeds = 3
    @Option(help: "Loop steps of the diffusion row.") var steps = 50
    @Option(help: "ddpm or ddim.") var sampler: SamplerKind = .ddpm
    @Option(help: ArgumentHelp("For every diffusion row. " + noiseScaleHelp)) var noiseScale: Float?
    @Flag(inversion: .prefixedNo, help: ArgumentHelp("For every diffusion row. " + renormalizeHelp)) var renormalizeEstimates: Bool?
    @Option(name: .customLong("lm-prior"), parsing: .upToNextOption, help: ArgumentHelp("Extra diffusion rows decoded greedily with these LM priors. " + lmPriorHelp)) var languageModelPriors: [Float] = []
    @Option(parsing: .upToNextOption, help: "Extra diffusion rows whose latents the LM decodes by sampling with these top-p values (the main row decodes greedily).") var decodeTopP: [Float] = []
    @Option(help: "Autoregressive baselines to add: LM folders (same tokenizer), e.g. the matched-size LM.") var arLm: [String] = []
    @Option(help: "Nucleus (top-p) of the autoregressive baselines.") var topP: Float = 0.95
    @Option(parsing: .upToNextOption, help: "Loop steps to sweep (one seed, --sweep-samples each).") var sweepSteps: [Int] = [5, 10, 25, 50, 100, 250]
    @Option(help: "Samples per point of the steps sweep.") var sweepSamples = 200
    @Option(parsing: .upToNextOption, help: "Guidance weights to sweep on continuations (conditional denoisers only).") var sweepGuidance: [Float] = [1, 2, 3]
    @Option(help: "Held-out prompts for the continuation sweep.") var prompts = 200
    @Option(help: "MAUVE k-means clusters (default: samples / 10).") var clusters: Int?
    @Option(help: "Training passages whose latents' mean and covariance the Gaussian control row samples from.") var gaussianPassages = 4000
    @Option(help: "How those passages are cut, as train diffusion's --passages: packed (like the held-out passages) or the fixed windows a denoiser is trained on.")
    var gaussianPassageStarts: PassageBatcher.Starts = .packed
    @Option(help: ArgumentHelp("For every latent-decoded row (an experiment: on generated latents it costs fluency). " + refineHelp)) var refine = 0
    @Option(help: "A sentence encoder folder (sentence-transformers layout; all-MiniLM-L6-v2 from `make judge`): every row also gets MAUVE on its features.") var judge: String?
    @Option(name: .customLong("judge-lm"), help: "A language model the loop never saw (`make judge-lm`): every row also gets perplexity under it.") var judgeLM: String?
    @Option(help: "Also score the main diffusion row's x0 estimates after this many of its steps, decoded like its samples (0: off): is the final passage as fluent as the early estimate?") var estimateStep = 10
    @Flag(help: "Score only the diffusion rows beside human text (no baselines, steps sweep or continuations): a quick check of a denoiser.") var diffusionOnly = false
    @Option(help: "Write the results here (JSON).") var out: String

    func validate() throws {
        guard samples >= 2, seeds >= 1, steps >= 1, sweepSamples >= 2, prompts >= 2, gaussianPassages >= 2 else {
            throw ValidationError("--samples, --sweep-samples, --prompts and --gaussian-passages need at least 2, --seeds and --steps at least 1")
        }
        guard sweepSteps.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--sweep-steps must be positive") }
        guard estimateStep >= 0, estimateStep < steps || estimateStep == 0 else {
            throw ValidationError("--estimate-step must be between 0 (off) and --steps − 1 (\(steps - 1)), got \(estimateStep)")
        }
        try validateFlags(request)
        for weight in languageModelPriors { try validateLanguageModelPrior(weight) }
        for p in decodeTopP { try validateFlags(GenerationRequest(decodeTopP: p)) }
        try validateRefine(refine)
    }

    /// The loop of every diffusion row, as the flags give it (nil settings: the bundle's defaults).
    var request: GenerationRequest {
        GenerationRequest(steps: steps, sampler: sampler, noiseScale: noiseScale, renormalizeEstimates: renormalizeEstimates)
    }

    func run() throws {
        try reportingErrors {
            let output = fileURL(out)
            do {   // fail now, not after an hour of sampling
                try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw CommandError("\(output.deletingLastPathComponent().path): cannot create the results folder (\(error.localizedDescription))")
            }
            let judges = GenerationJudges(
                sentenceEncoder: try judge.map { try SentenceEncoder(folder: fileURL($0)) },
                languageModel: try judgeLM.map { (try GPT.load(from: fileURL($0)), try loadTokenizer(directory: fileURL($0))) })
            let (system, tokenizer) = try bundle.load()
            let base = try resolve(request, for: system)   // greedy decoding, the bundle's LM prior
            let lm = system.autoencoder.languageModel
            let maxLength = system.autoencoder.config.maxLength
            let folders = try bundle.folders()
            let (spec, splits) = try corpusSplits(dataFolders: [folders.autoencoder, folders.languageModel], tokenizer: tokenizer)
            let heldOut = try PassageBatcher(documents: splits.validationDocuments, tokenizer: tokenizer, maxLength: maxLength, seed: spec.seed).passages
            let texts = try heldOut.map { try tokenizer.decode($0.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines) }
            // Even passages are the MAUVE reference, odd ones the human row: the two never overlap.
            let reference = stride(from: 0, to: texts.count, by: 2).map { texts[$0] }
            let human = stride(from: 1, to: texts.count, by: 2).map { texts[$0] }
            status("reading \(reference.count) reference passages and indexing \(splits.trainDocuments.count) training documents")
            let scorer = try GenerationScorer(model: lm, tokenizer: tokenizer, reference: reference,
                                              trainingDocuments: splits.trainDocuments, mauveOptions: mauveOptions, judges: judges)
            var results = GenerationResults(command: (["nebula"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
                                            date: ISO8601DateFormatter().string(from: Date()),
                                            referencePassages: reference.count, sampler: sampler.rawValue)
            let diffusionParameters = lm.parameterCount + system.autoencoder.trainableParameters().reduce(0) { $0 + $1.1.count }
                + system.denoiser.parameterCount

            // The encoder's latents of the MAUVE reference: what every latent-decoded row's latents are measured against.
            // The human row's figure, over as many of its passages as a row has samples, is the floor (the distance
            // is biased upwards by few samples in K·d dimensions).
            let pad = Int32(tokenizer.endOfTextID!)
            let encoded = { (parity: Int) in
                flattened(system.autoencoder.encode(stride(from: parity, to: heldOut.count, by: 2).map { heldOut[$0].tokens }, padID: pad))
            }
            let referenceLatents = encoded(0)
            results.rows.append(.init(name: "human (held-out)", parameters: 0, runs: [(try scorer.score(human), 0)],
                                      samples: human.count, examples: Array(human.prefix(5)),
                                      latentDistances: [frechetDistance(Array(encoded(1).prefix(samples)), referenceLatents)]))
            let loop = base.loopDescription
            let prior = base.languageModelPrior   // 0 for a parallel-decoder bundle, which has no LM to fuse
            let refined = refine == 0 ? "" : ", refined \(refine)"
            let fused = (prior == 0 ? "" : ", LM prior \(prior)") + refined
            for topP in [nil] + decodeTopP.map(Optional.some) {
                let name = "diffusion (\(loop), " + (topP.map { "decoded with top-p \($0)" } ?? "greedy decoding") + fused + ")"
                var estimates: [UInt64: Generated] = [:]   // the main row's early x0 estimates, by seed
                let estimating = topP == nil && estimateStep > 0
                results.rows.append(try row(name, parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents) { seed in
                    var config = base
                    config.decoding = topP.map { SamplingOptions(temperature: 1, topP: $0) } ?? base.decoding
                    return try diffusionSamples(system, tokenizer, config, count: samples, seed: seed,
                                         estimateAfter: estimating ? estimateStep : nil) { estimates[seed] = $0 }
                })
                if estimating {   // the same runs' x0 estimates after estimateStep steps, decoded the same way
                    results.rows.append(try row("diffusion, the same runs' x0 estimates after \(estimateStep) of \(steps) steps (greedy decoding\(fused))",
                                                parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents) { seed in
                        estimates[seed]!
                    })
                }
            }
            if system.autoencoder.autoregressive != nil {   // the same latents, the greedy decode fused with the LM
                for weight in languageModelPriors {
                    results.rows.append(try row("diffusion (\(loop), greedy decoding, LM prior \(weight)\(refined))", parameters: diffusionParameters,
                                                scorer: scorer, latentReference: referenceLatents) { seed in
                        var config = base
                        config.languageModelPrior = weight
                        return try diffusionSamples(system, tokenizer, config, count: samples, seed: seed)
                    })
                }
            }
            if system.autoencoder.autoregressive != nil {   // the same latents through the parallel decoder (argmax)
                let parameters = diffusionParameters - system.autoencoder.autoregressive!.parameterCount
                results.rows.append(try row("diffusion (\(loop), parallel decoder\(refined))", parameters: parameters, scorer: scorer,
                                            latentReference: referenceLatents) { seed in
                    try diffusionSamples(system, tokenizer, base, count: samples, seed: seed, decoder: .parallel)
                })
            }
            // The control: what the decoder (and its LM prior) writes from latents the loop never touched.
            results.rows.append(try row("control: Gaussian latents, no loop (greedy decoding\(fused))", parameters: diffusionParameters,
                                        scorer: scorer, latentReference: referenceLatents) { seed in
                try noiseLatentSamples(system, tokenizer, base, count: samples, seed: seed)
            })
            // The stronger control: latents with the data's mean and covariance, still no loop. A loop that does not
            // beat it has learned no more of the latent space than its second moments.
            let training = try PassageBatcher(documents: splits.trainDocuments, tokenizer: tokenizer, maxLength: maxLength,
                                              starts: gaussianPassageStarts, seed: spec.seed).passages
            let fitted = stride(from: 0, to: training.count, by: max(1, training.count / gaussianPassages)).prefix(gaussianPassages).map { training[$0].tokens }
            status("fitting a Gaussian to the latents of \(fitted.count) training passages")
            let gaussian = GaussianLatentModel(latents: Tensor.concatenate(stride(from: 0, to: fitted.count, by: 256).map {
                system.autoencoder.encode(Array(fitted[$0..<min($0 + 256, fitted.count)]), padID: pad)
            }, axis: 0))
            let cut = gaussianPassageStarts == .packed ? "" : " \(gaussianPassageStarts.rawValue)"
            results.rows.append(try row("control: the latents' Gaussian (\(fitted.count)\(cut) training passages), no loop (greedy decoding\(fused))",
                                        parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents) { seed in
                try decodedInBatches(system, tokenizer, base, count: samples, seed: seed) { _, n, generator in
                    layerNorm(gaussian.sample(count: n, generator: &generator), weight: nil, bias: nil)   // [n, K, d], normalised like the encoder's
                }
            })
            if diffusionOnly {
                try writeJSON(results, output)
                printSummary(results)
                return
            }
            let baselines = [(name: "LM alone (the frozen LM, top-p \(topP))", model: lm)]
                + (try arLm.map { path in (name: "AR LM \(fileURL(path).lastPathComponent) (top-p \(topP))", model: try GPT.load(from: fileURL(path))) })
            for baseline in baselines {
                results.rows.append(try row(baseline.name, parameters: baseline.model.parameterCount, scorer: scorer) { seed in
                    try autoregressiveSamples(baseline.model, tokenizer, count: samples, maxTokens: maxLength, seed: seed)
                })
            }
            // The fairer AR row: whole-sentence passages cut from a story the LM writes, at a random position.
            results.rows.append(try row("LM alone, whole-sentence passages from its stories (top-p \(topP))", parameters: lm.parameterCount,
                                        scorer: scorer) { seed in
                try storyPassageSamples(lm, tokenizer, count: samples, maxLength: maxLength, seed: seed)
            })

            for count in sweepSteps {
                status("steps sweep: \(count) steps")
                var config = base
                config.steps = count
                let (generated, seconds, _) = try diffusionSamples(system, tokenizer, config, count: sweepSamples, seed: 100)
                results.stepsSweep.append(.init(steps: count, scores: try scorer.score(generated), secondsPerSample: seconds, example: generated[0]))
            }

            try continuations(system, tokenizer, base, heldOut: heldOut, baselines: baselines, judge: judges.sentenceEncoder, into: &results)
            try writeJSON(results, output)
            printSummary(results)
        }
    }

    /// A row scored over `--seeds` seeds; `generate(seed)` gives the texts and seconds per sample. Rows decoded
    /// from latents give those too, with the encoder's latents of held-out text as `latentReference`: their
    /// Fréchet distance to it is scored beside the texts.
    func row(_ name: String, parameters: Int, scorer: GenerationScorer, latentReference: [[Float]]? = nil,
             generate: (UInt64) throws -> ([String], Double)) throws -> GenerationResults.Row {
        try row(name, parameters: parameters, scorer: scorer, latentReference: latentReference) { seed in
            let (texts, seconds) = try generate(seed)
            return (texts, seconds, nil)
        }
    }

    func row(_ name: String, parameters: Int, scorer: GenerationScorer, latentReference: [[Float]]?,
             generate: (UInt64) throws -> Generated) throws -> GenerationResults.Row {
        var runs: [(scores: GenerationScores, seconds: Double)] = []
        var examples: [String] = []
        var distances: [Double] = []
        for seed in 0..<seeds {
            status("\(name), seed \(seed)")
            let (generated, seconds, latents) = try generate(UInt64(seed))
            runs.append((try scorer.score(generated), seconds))
            if let latents, let latentReference { distances.append(frechetDistance(latents, latentReference)) }
            if examples.isEmpty { examples = Array(generated.prefix(5)) }
        }
        return GenerationResults.Row(name: name, parameters: parameters, runs: runs, samples: samples, examples: examples,
                                     latentDistances: distances.isEmpty ? nil : distances)
    }

    /// Texts, seconds per sample, and (for texts decoded from latents) the latents, flattened to K·d values each.
    typealias Generated = (texts: [String], seconds: Double, latents: [[Float]]?)

    var mauveOptions: MAUVE.Options {
        var options = MAUVE.Options()
        options.clusters = clusters
        return options
    }

    /// `count` samples of the loop `config` in batches (conditioned on the rows of `condition` when given),
    /// decoded as `config` says; seconds per sample. With `estimateAfter` k, the x0 estimates after k steps of
    /// the same runs are decoded the same way and handed to `estimates` (their seconds: the decode's alone).
    func diffusionSamples(_ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig, count: Int, seed: UInt64,
                          condition: Tensor? = nil, decoder: AutoencoderConfig.Decoder? = nil,
                          estimateAfter: Int? = nil, estimates: (Generated) -> Void = { _ in }) throws -> Generated {
        var early: [Tensor] = []
        let generated = try decodedInBatches(system, tokenizer, config, count: count, seed: seed, decoder: decoder) { first, n, generator in
            system.sample(count: n, config, condition: condition.map { $0.slice(axis: 0, first..<(first + n)) },
                          generator: &generator) { i, output in
                if i + 1 == estimateAfter { early.append(output.predictedX0) }
            }
        }
        if estimateAfter != nil {
            var batches = early.makeIterator()
            estimates(try decodedInBatches(system, tokenizer, config, count: count, seed: seed, decoder: decoder) { _, _, _ in batches.next()! })
        }
        return generated
    }

    /// `count` latents drawn from N(0, 1) and normalised like the encoder's (mean 0, variance 1 per vector),
    /// decoded as the diffusion rows are; seconds per sample.
    func noiseLatentSamples(_ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig, count: Int,
                            seed: UInt64) throws -> Generated {
        let shape = [system.config.network.latents, system.config.network.latentWidth]
        return try decodedInBatches(system, tokenizer, config, count: count, seed: seed) { _, n, generator in
            layerNorm(Tensor.randn([n] + shape, generator: &generator), weight: nil, bias: nil)      // [n, K, d]
        }
    }

    /// Latents from `latents(first, n, generator)` in batches of 50, decoded to texts as `config` says; seconds
    /// per sample.
    func decodedInBatches(_ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ config: GenerationConfig, count: Int, seed: UInt64,
                          decoder: AutoencoderConfig.Decoder? = nil,
                          latents: (Int, Int, inout SeededGenerator) -> Tensor) throws -> Generated {
        var generator = SeededGenerator(seed: seed)
        let start = Date()
        var texts: [String] = []
        var drawn: [[Float]] = []
        let batch = 50
        for first in stride(from: 0, to: count, by: batch) {
            let z = latents(first, min(batch, count - first), &generator)                            // [n, K, d]
            texts += try decodeTexts(z, system, tokenizer, config, decoder: decoder, refine: refine, seed: seed &+ UInt64(first))
            drawn += flattened(z)
        }
        return (texts, Date().timeIntervalSince(start) / Double(count), drawn)
    }

    /// `[n, K, d]` latents as n vectors of K·d values.
    func flattened(_ z: Tensor) -> [[Float]] {
        let size = z.count / z.shape[0]
        return (0..<z.shape[0]).map { Array(z.data[($0 * size)..<(($0 + 1) * size)]) }
    }

    /// `count` passages of at most `maxTokens` from an LM started at `<|endoftext|>` (or after `prompts`).
    func autoregressiveSamples(_ model: GPT, _ tokenizer: any Tokenizer, count: Int, maxTokens: Int, seed: UInt64,
                               prompts: [[Int]]? = nil) throws -> ([String], Double) {
        var generator = SeededGenerator(seed: seed)
        let eot = tokenizer.endOfTextID!
        let start = Date()
        let texts = try (0..<count).map { i -> String in
            let tokens = model.generate(prompt: [eot] + (prompts?[i] ?? []), maxTokens: maxTokens,
                                        options: SamplingOptions(temperature: 1, topP: topP), stopToken: eot, generator: &generator)
            return try tokenizer.decode(tokens.filter { $0 != eot }).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (texts, Date().timeIntervalSince(start) / Double(count))
    }

    /// `count` passages cut like the corpus's (whole sentences, at most `maxLength` tokens) from stories the
    /// LM writes from `<|endoftext|>` (up to its context), each taken at a random position of its story.
    func storyPassageSamples(_ model: GPT, _ tokenizer: any Tokenizer, count: Int, maxLength: Int, seed: UInt64) throws -> ([String], Double) {
        var generator = SeededGenerator(seed: seed)
        let eot = tokenizer.endOfTextID!
        let start = Date()
        var texts: [String] = []
        while texts.count < count {
            let story = model.generate(prompt: [eot], maxTokens: model.config.contextLength - 1,
                                       options: SamplingOptions(temperature: 1, topP: topP), stopToken: eot, generator: &generator)
            let text = try tokenizer.decode(story.filter { $0 != eot })
            var passages = try PassageBatcher(documents: [text], tokenizer: tokenizer, maxLength: maxLength, seed: seed).passages
            if story.last != eot && passages.count > 1 { passages.removeLast() }   // cut off by the context, mid-sentence
            guard !passages.isEmpty else { continue }
            let chosen = passages[generator.nextInt(below: passages.count)]
            texts.append(try tokenizer.decode(chosen.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return (texts, Date().timeIntervalSince(start) / Double(count))
    }

    /// Continuations of held-out passages that have a successor in their document, at each guidance weight
    /// (conditional denoisers), and from each autoregressive baseline given the prompt as text.
    func continuations(_ system: LatentDiffusion, _ tokenizer: any Tokenizer, _ base: GenerationConfig, heldOut: [Passage],
                       baselines: [(name: String, model: GPT)], judge: SentenceEncoder?, into results: inout GenerationResults) throws {
        guard system.denoiser.config.contextWidth > 0, !sweepGuidance.isEmpty else { return }
        let pairs = zip(heldOut, heldOut.dropFirst()).filter { $0.0.document == $0.1.document && $0.1.index == $0.0.index + 1 }.prefix(prompts)
        guard pairs.count >= 2 else { return }
        results.prompts = pairs.count
        let truth = try pairs.map { try tokenizer.decode($0.1.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines) }
        let pad = Int32(tokenizer.endOfTextID!)
        let condition = system.autoencoder.encode(pairs.map(\.0.tokens), padID: pad)                   // [P, K, d]
        let lm = system.autoencoder.languageModel
        let truthFeatures = try GenerationScorer.read(truth, model: lm, tokenizer: tokenizer).features
        let truthJudged = judge?.embed(truth)
        func point(_ name: String, guidance: Double?, steps: Int?, _ texts: [String], _ seconds: Double) throws -> GenerationResults.ContinuationPoint {
            let features = try GenerationScorer.read(texts, model: lm, tokenizer: tokenizer).features
            let judgeMAUVE = judge.map { MAUVE(human: truthJudged!, model: $0.embed(texts), options: mauveOptions).score }
            return .init(system: name, guidance: guidance, steps: steps, rougeL: RougeL.meanF(references: truth, hypotheses: texts),
                         mauve: MAUVE(human: truthFeatures, model: features, options: mauveOptions).score, judgeMAUVE: judgeMAUVE,
                         secondsPerSample: seconds)
        }
        for topP in [nil] + decodeTopP.map(Optional.some) {
            var config = base
            config.decoding = topP.map { SamplingOptions(temperature: 1, topP: $0) } ?? base.decoding
            let name = "diffusion" + (topP.map { ", decoded with top-p \($0)" } ?? ", greedy decoding")
            for weight in sweepGuidance {
                status("continuations: \(name), guidance \(weight)")
                config.guidance = weight
                let (texts, seconds, _) = try diffusionSamples(system, tokenizer, config, count: pairs.count, seed: 200, condition: condition)
                results.continuation.append(try point(name, guidance: Double(weight), steps: steps, texts, seconds))
            }
        }
        for baseline in baselines {
            status("continuations: \(baseline.name)")
            let (texts, seconds) = try autoregressiveSamples(baseline.model, tokenizer, count: pairs.count, maxTokens: system.autoencoder.config.maxLength,
                                                             seed: 200, prompts: pairs.map { $0.0.tokens.map(Int.init) })
            results.continuation.append(try point(baseline.name, guidance: nil, steps: nil, texts, seconds))
        }
    }

    func printSummary(_ results: GenerationResults) {
        for row in results.rows {
            let figures = (GenerationScores.judgeNames + ["mauve", "perplexity", "diversity", "distinct_2", "memorization"]).compactMap { key in
                row.mean[key].map { String(format: "%@ %.3f±%.3f", key, $0, row.std[key] ?? 0) }
            }
            print("\(row.name): " + figures.joined(separator: ", ") + String(format: ", %.3f s/sample", row.secondsPerSample))
        }
        for point in results.stepsSweep {
            let judged = GenerationScores.judgeNames.filter { !point.scores.value($0).isNaN }.map { String(format: ", %@ %.3f", $0, point.scores.value($0)) }
            print(String(format: "%4d steps: mauve %.3f, perplexity %.2f", point.steps, point.scores.mauve, point.scores.perplexity)
                  + judged.joined() + String(format: ", %.3f s/sample", point.secondsPerSample))
        }
        for point in results.continuation {
            print("continuation, \(point.system)\(point.guidance.map { " w=\($0)" } ?? ""): " + String(format: "ROUGE-L %.3f, MAUVE %.3f", point.rougeL, point.mauve)
                  + (point.judgeMAUVE.map { String(format: ", judge MAUVE %.3f", $0) } ?? ""))
        }
        print("results → \(out)")
    }

    func status(_ message: String) { FileHandle.standardError.write(Data("… \(message)\n".utf8)) }
}
