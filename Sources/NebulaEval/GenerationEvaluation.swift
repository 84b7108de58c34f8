import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText

/// The generation-evaluation protocol: does the loop pay? The diffusion system beside held-out human text,
/// controls that skip the loop and autoregressive baselines, then quality against the loop's steps and,
/// for a conditional denoiser, continuations against guidance. `nebula eval generation` fills a ``Plan``
/// from its flags and writes what ``run(command:)`` returns.
///
/// Held-out passages are cut from `heldOutDocuments` (whole sentences, as the autoencoder reads them): the
/// even ones are the MAUVE reference, the odd ones the human row, so the two never overlap.
///
/// ```swift
/// var plan = GenerationEvaluation.Plan()
/// plan.samples = 300
/// let evaluation = GenerationEvaluation(system: system, tokenizer: tokenizer, trainDocuments: splits.trainDocuments,
///                                       heldOutDocuments: splits.validationDocuments, passageSeed: 1337, plan: plan)
/// let results = try evaluation.run(command: "my experiment")
/// ```
public struct GenerationEvaluation {
    /// What is measured and on how many samples.
    public struct Plan: Sendable {
        /// Samples per seed of every row.
        public var samples = 1000
        /// Seeds per row (mean ± std over them).
        public var seeds = 3
        /// The loop of every diffusion row (nil settings: the bundle's defaults); its decoding is the main row's.
        public var loop = GenerationRequest()
        /// Extra diffusion rows, decoded greedily with these LM priors.
        public var languageModelPriors: [Float] = []
        /// Extra diffusion rows whose latents are decoded by sampling with these top-p values.
        public var decodeTopP: [Float] = []
        /// Nucleus of the autoregressive baselines.
        public var baselineTopP: Float = 0.95
        /// Loop steps of the steps sweep (one seed, `sweepSamples` each).
        public var sweepSteps = [5, 10, 25, 50, 100, 250]
        public var sweepSamples = 200
        /// Guidance weights of the continuation sweep (conditional denoisers only).
        public var sweepGuidance: [Float] = [1, 2, 3]
        /// Held-out prompts of the continuation sweep.
        public var prompts = 200
        /// MAUVE's k-means clusters (nil: samples / 10).
        public var clusters: Int?
        /// Training passages whose latents' mean and covariance the Gaussian control samples from, and how they are cut.
        public var gaussianPassages = 4000
        public var gaussianPassageStarts: PassageBatcher.Starts = .packed
        /// Rounds of latent-consistent decoding of every latent-decoded row.
        public var refine = 0
        /// A row of the main run's x0 estimates after this many steps (0: none).
        public var estimateStep = 10
        /// Only the diffusion rows and the controls beside human text: no baselines, sweeps or continuations.
        public var diffusionOnly = false
        /// The two control rows (Gaussian latents, and the latents' Gaussian, decoded with no loop); they depend on the
        /// decode only, not the loop, so a sweep of loop settings may score them once.
        public var controls = true

        public init() {}

        /// Throws on a plan that cannot run, naming the setting.
        public func validate() throws {
            func fail(_ message: String) -> PlanError { PlanError(description: message) }
            guard samples >= 2, seeds >= 1, sweepSamples >= 2, prompts >= 2, gaussianPassages >= 2 else {
                throw fail("samples, sweep samples, prompts and Gaussian passages need at least 2, seeds at least 1")
            }
            guard sweepSteps.allSatisfy({ $0 >= 1 }) else { throw fail("sweep steps must be positive") }
            guard estimateStep >= 0, estimateStep < loop.steps || estimateStep == 0 else {
                throw fail("the estimate step must be between 0 (off) and the steps − 1 (\(loop.steps - 1)), got \(estimateStep)")
            }
            try loop.validate()
            for weight in languageModelPriors { try GenerationRequest(languageModelPrior: weight).validate() }
            for p in decodeTopP { try GenerationRequest(decodeTopP: p).validate() }
            guard refine >= 0 else { throw fail("refine must be ≥ 0, got \(refine)") }
        }

        /// Why a plan cannot run.
        public struct PlanError: Error, CustomStringConvertible, Equatable {
            public let description: String
        }

        var mauveOptions: MAUVE.Options {
            var options = MAUVE.Options()
            options.clusters = clusters
            return options
        }
    }

    public let system: LatentDiffusion
    public let tokenizer: any Tokenizer
    /// The corpus's training documents: memorization is scored against them, the Gaussian control fitted on them.
    public let trainDocuments: [String]
    /// Documents none of the models trained on: the reference, the human row, the continuation prompts.
    public let heldOutDocuments: [String]
    /// The seed passages are cut with (the corpus split's).
    public let passageSeed: UInt64
    /// Autoregressive LMs to compare beside the system's own LM, each with its name (e.g. the matched-size LM).
    public let baselines: [(name: String, model: GPT)]
    public let judges: GenerationJudges
    public let plan: Plan
    /// Told what is being done, line by line (rows, seeds, sweep points).
    public var progress: (String) -> Void = { _ in }

    public init(
        system: LatentDiffusion, tokenizer: any Tokenizer, trainDocuments: [String], heldOutDocuments: [String],
        passageSeed: UInt64, baselines: [(name: String, model: GPT)] = [], judges: GenerationJudges = GenerationJudges(),
        plan: Plan
    ) {
        self.system = system
        self.tokenizer = tokenizer
        self.trainDocuments = trainDocuments
        self.heldOutDocuments = heldOutDocuments
        self.passageSeed = passageSeed
        self.baselines = baselines
        self.judges = judges
        self.plan = plan
    }

    /// Texts, seconds per sample, and (for texts decoded from latents) the latents, flattened to K·d values each.
    typealias Generated = (texts: [String], seconds: Double, latents: [[Float]]?)

    var endOfText: Int { tokenizer.endOfTextID! }
    var maxLength: Int { system.autoencoder.config.maxLength }

    /// Runs the plan; `command` is recorded in the results.
    public func run(command: String) throws -> GenerationResults {
        try plan.validate()
        guard tokenizer.endOfTextID != nil else {
            throw Plan.PlanError(description: "the tokenizer has no <|endoftext|> token, which ends every passage")
        }
        let base = try system.configuration(for: plan.loop)  // greedy decoding, the bundle's LM prior
        let lm = system.autoencoder.languageModel
        let heldOut = try PassageBatcher(documents: heldOutDocuments, tokenizer: tokenizer, maxLength: maxLength, seed: passageSeed)
            .passages
        let texts = try heldOut.map { try tokenizer.decode($0.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines) }
        let reference = stride(from: 0, to: texts.count, by: 2).map { texts[$0] }
        let human = stride(from: 1, to: texts.count, by: 2).map { texts[$0] }
        progress("reading \(reference.count) reference passages and indexing \(trainDocuments.count) training documents")
        let scorer = try GenerationScorer(
            model: lm, tokenizer: tokenizer, reference: reference, trainingDocuments: trainDocuments,
            mauveOptions: plan.mauveOptions, judges: judges)
        var results = GenerationResults(
            command: command, date: ISO8601DateFormatter().string(from: Date()),
            referencePassages: reference.count, sampler: base.sampler.rawValue)
        let diffusionParameters =
            lm.parameterCount + system.autoencoder.trainableParameters().reduce(0) { $0 + $1.1.count }
            + system.denoiser.parameterCount

        // The encoder's latents of the MAUVE reference: what every latent-decoded row's latents are measured against.
        // The human row's figure, over as many of its passages as a row has samples, is the floor (the distance
        // is biased upwards by few samples in K·d dimensions).
        let encoded = { (parity: Int) in
            flattened(system.autoencoder.encode(stride(from: parity, to: heldOut.count, by: 2).map { heldOut[$0].tokens }))
        }
        let referenceLatents = encoded(0)
        results.rows.append(
            .init(
                name: "human (held-out)", parameters: 0, runs: [(try scorer.score(human), 0)],
                samples: human.count, examples: Array(human.prefix(5)),
                latentDistances: [frechetDistance(Array(encoded(1).prefix(plan.samples)), referenceLatents)]))
        let loop = base.loopDescription
        let prior = base.languageModelPrior  // 0 for a parallel-decoder bundle, which has no LM to fuse
        let refined = plan.refine == 0 ? "" : ", refined \(plan.refine)"
        let fused =
            base.decoder == .autoregressive ? (prior == 0 ? "" : ", LM prior \(prior)") + refined : ", \(base.decoder.rawValue) decoder"
        for topP in [nil] + plan.decodeTopP.map(Optional.some) {
            let name = "diffusion (\(loop), " + (topP.map { "decoded with top-p \($0)" } ?? "greedy decoding") + fused + ")"
            var estimates: [UInt64: Generated] = [:]  // the main row's early x0 estimates, by seed
            let estimating = topP == nil && plan.estimateStep > 0
            var config = base
            config.decoding = topP.map { SamplingOptions(temperature: 1, topP: $0) } ?? base.decoding
            results.rows.append(
                try row(name, parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents) { seed in
                    try diffusionSamples(
                        config, count: plan.samples, seed: seed,
                        estimateAfter: estimating ? plan.estimateStep : nil
                    ) { estimates[seed] = $0 }
                })
            if estimating {  // the same runs' x0 estimates after estimateStep steps, decoded the same way
                results.rows.append(
                    try row(
                        "diffusion, the same runs' x0 estimates after \(plan.estimateStep) of \(base.steps) steps (greedy decoding\(fused))",
                        parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents
                    ) { seed in
                        estimates[seed]!
                    })
            }
        }
        if system.autoencoder.autoregressive != nil {  // the same latents, the greedy decode fused with the LM
            for weight in plan.languageModelPriors {
                var config = base
                (config.languageModelPrior, config.decoder) = (weight, .autoregressive)
                results.rows.append(
                    try row(
                        "diffusion (\(loop), greedy decoding, LM prior \(weight)\(refined))", parameters: diffusionParameters,
                        scorer: scorer, latentReference: referenceLatents
                    ) { seed in
                        try diffusionSamples(config, count: plan.samples, seed: seed)
                    })
            }
        }
        if let autoregressive = system.autoencoder.autoregressive, base.decoder != .parallel {  // the same latents, parallel decoder (argmax)
            results.rows.append(
                try row(
                    "diffusion (\(loop), parallel decoder\(refined))", parameters: diffusionParameters - autoregressive.parameterCount,
                    scorer: scorer, latentReference: referenceLatents
                ) { seed in
                    try diffusionSamples(base, count: plan.samples, seed: seed, decoder: .parallel)
                })
        }
        if let onePass = system.onePass, base.decoder != .onePass {  // the same latents through the one-pass decoder
            let parameters = diffusionParameters - (system.autoencoder.autoregressive?.parameterCount ?? 0) + onePass.parameterCount
            results.rows.append(
                try row("diffusion (\(loop), one-pass decoder)", parameters: parameters, scorer: scorer, latentReference: referenceLatents)
                {
                    seed in
                    try diffusionSamples(base, count: plan.samples, seed: seed, decoder: .onePass)
                })
        }
        if plan.controls {
            // The control: what the decoder (and its LM prior) writes from latents the loop never touched.
            let shape = [system.config.network.latents, system.config.network.latentWidth]
            results.rows.append(
                try row(
                    "control: Gaussian latents, no loop (greedy decoding\(fused))", parameters: diffusionParameters,
                    scorer: scorer, latentReference: referenceLatents
                ) { seed in
                    try decodedInBatches(base, count: plan.samples, seed: seed) { _, n, generator in
                        layerNorm(Tensor.randn([n] + shape, generator: &generator), weight: nil, bias: nil)  // [n, K, d], normalised like the encoder's
                    }
                })
            // The stronger control: latents with the data's mean and covariance, still no loop. A loop that does not
            // beat it has learned no more of the latent space than its second moments.
            let training = try PassageBatcher(
                documents: trainDocuments, tokenizer: tokenizer, maxLength: maxLength,
                starts: plan.gaussianPassageStarts, seed: passageSeed
            ).passages
            let fitted = stride(from: 0, to: training.count, by: max(1, training.count / plan.gaussianPassages))
                .prefix(plan.gaussianPassages).map { training[$0].tokens }
            progress("fitting a Gaussian to the latents of \(fitted.count) training passages")
            let gaussian = GaussianLatentModel(
                latents: Tensor.concatenate(
                    stride(from: 0, to: fitted.count, by: 256).map {
                        system.autoencoder.encode(Array(fitted[$0..<min($0 + 256, fitted.count)]))
                    }, axis: 0))
            let cut = plan.gaussianPassageStarts == .packed ? "" : " \(plan.gaussianPassageStarts.rawValue)"
            results.rows.append(
                try row(
                    "control: the latents' Gaussian (\(fitted.count)\(cut) training passages), no loop (greedy decoding\(fused))",
                    parameters: diffusionParameters, scorer: scorer, latentReference: referenceLatents
                ) { seed in
                    try decodedInBatches(base, count: plan.samples, seed: seed) { _, n, generator in
                        layerNorm(gaussian.sample(count: n, generator: &generator), weight: nil, bias: nil)  // [n, K, d], normalised like the encoder's
                    }
                })
        }
        if plan.diffusionOnly { return results }

        let topP = plan.baselineTopP
        let autoregressive =
            [(name: "LM alone (the frozen LM, top-p \(topP))", model: lm)]
            + baselines.map { (name: "\($0.name) (top-p \(topP))", model: $0.model) }
        for baseline in autoregressive {
            results.rows.append(
                try row(baseline.name, parameters: baseline.model.parameterCount, scorer: scorer) { seed in
                    try autoregressiveSamples(baseline.model, count: plan.samples, seed: seed)
                })
        }
        // The fairer AR row: whole-sentence passages cut from a story the LM writes, at a random position.
        results.rows.append(
            try row(
                "LM alone, whole-sentence passages from its stories (top-p \(topP))", parameters: lm.parameterCount,
                scorer: scorer
            ) { seed in
                try storyPassageSamples(lm, count: plan.samples, seed: seed)
            })

        for count in plan.sweepSteps {
            progress("steps sweep: \(count) steps")
            var config = base
            config.steps = count
            let (generated, seconds, _) = try diffusionSamples(config, count: plan.sweepSamples, seed: 100)
            results.stepsSweep.append(
                .init(steps: count, scores: try scorer.score(generated), secondsPerSample: seconds, example: generated[0]))
        }

        try continuations(base, heldOut: heldOut, baselines: autoregressive, into: &results)
        return results
    }

    /// A row scored over the plan's seeds; `generate(seed)` gives the texts and seconds per sample.
    func row(
        _ name: String, parameters: Int, scorer: GenerationScorer,
        generate: (UInt64) throws -> ([String], Double)
    ) throws -> GenerationResults.Row {
        try row(name, parameters: parameters, scorer: scorer, latentReference: nil) { seed in
            let (texts, seconds) = try generate(seed)
            return (texts, seconds, nil)
        }
    }

    /// A row of texts decoded from latents: with the encoder's latents of held-out text as `latentReference`,
    /// their Fréchet distance to it is scored beside the texts.
    func row(
        _ name: String, parameters: Int, scorer: GenerationScorer, latentReference: [[Float]]?,
        generate: (UInt64) throws -> Generated
    ) throws -> GenerationResults.Row {
        var runs: [(scores: GenerationScores, seconds: Double)] = []
        var examples: [String] = []
        var distances: [Double] = []
        for seed in 0..<plan.seeds {
            progress("\(name), seed \(seed)")
            let (generated, seconds, latents) = try generate(UInt64(seed))
            runs.append((try scorer.score(generated), seconds))
            if let latents, let latentReference { distances.append(frechetDistance(latents, latentReference)) }
            if examples.isEmpty { examples = Array(generated.prefix(5)) }
        }
        return GenerationResults.Row(
            name: name, parameters: parameters, runs: runs, samples: plan.samples, examples: examples,
            latentDistances: distances.isEmpty ? nil : distances)
    }

    /// `count` samples of the loop `config` in batches (conditioned on the rows of `condition` when given),
    /// decoded as `config` says; seconds per sample. With `estimateAfter` k, the x0 estimates after k steps of
    /// the same runs are decoded the same way and handed to `estimates` (their seconds: the decode's alone).
    func diffusionSamples(
        _ config: GenerationConfig, count: Int, seed: UInt64, condition: Tensor? = nil,
        decoder: PassageDecoder? = nil,
        estimateAfter: Int? = nil, estimates: (Generated) -> Void = { _ in }
    ) throws -> Generated {
        var early: [Tensor] = []
        let generated = try decodedInBatches(config, count: count, seed: seed, decoder: decoder) { first, n, generator in
            system.sample(
                count: n, config, condition: condition.map { $0.slice(axis: 0, first..<(first + n)) },
                generator: &generator
            ) { i, output in
                if i + 1 == estimateAfter { early.append(output.predictedX0) }
            }
        }
        if estimateAfter != nil {
            var batches = early.makeIterator()
            estimates(try decodedInBatches(config, count: count, seed: seed, decoder: decoder) { _, _, _ in batches.next()! })
        }
        return generated
    }

    /// Latents from `latents(first, n, generator)` in batches of 50, decoded to texts as `config` says; seconds
    /// per sample.
    func decodedInBatches(
        _ config: GenerationConfig, count: Int, seed: UInt64, decoder: PassageDecoder? = nil,
        latents: (Int, Int, inout SeededGenerator) -> Tensor
    ) throws -> Generated {
        var generator = SeededGenerator(seed: seed)
        let start = Date()
        var texts: [String] = []
        var drawn: [[Float]] = []
        let batch = 50
        for first in stride(from: 0, to: count, by: batch) {
            let z = latents(first, min(batch, count - first), &generator)  // [n, K, d]
            var decoding = SeededGenerator(seed: seed &+ UInt64(first))
            texts += try system.decode(z, config, decoder: decoder, refine: plan.refine, generator: &decoding).map {
                try system.autoencoder.passageText($0, tokenizer: tokenizer)
            }
            drawn += flattened(z)
        }
        return (texts, Date().timeIntervalSince(start) / Double(count), drawn)
    }

    /// `[n, K, d]` latents as n vectors of K·d values.
    func flattened(_ z: Tensor) -> [[Float]] {
        let size = z.count / z.shape[0]
        return (0..<z.shape[0]).map { Array(z.data[($0 * size)..<(($0 + 1) * size)]) }
    }

    /// `count` passages of at most `maxLength` tokens from an LM started at `<|endoftext|>` (or after `prompts`).
    func autoregressiveSamples(_ model: GPT, count: Int, seed: UInt64, prompts: [[Int]]? = nil) throws -> ([String], Double) {
        var generator = SeededGenerator(seed: seed)
        let eot = endOfText
        let start = Date()
        let texts = try (0..<count).map { i -> String in
            let tokens = model.generate(
                prompt: [eot] + (prompts?[i] ?? []), maxTokens: maxLength,
                options: SamplingOptions(temperature: 1, topP: plan.baselineTopP), stopToken: eot, generator: &generator)
            return try tokenizer.decode(tokens.filter { $0 != eot }).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (texts, Date().timeIntervalSince(start) / Double(count))
    }

    /// `count` passages cut like the corpus's (whole sentences, at most `maxLength` tokens) from stories the
    /// LM writes from `<|endoftext|>` (up to its context), each taken at a random position of its story.
    func storyPassageSamples(_ model: GPT, count: Int, seed: UInt64) throws -> ([String], Double) {
        var generator = SeededGenerator(seed: seed)
        let eot = endOfText
        let start = Date()
        var texts: [String] = []
        while texts.count < count {
            let story = model.generate(
                prompt: [eot], maxTokens: model.config.contextLength - 1,
                options: SamplingOptions(temperature: 1, topP: plan.baselineTopP), stopToken: eot, generator: &generator)
            let text = try tokenizer.decode(story.filter { $0 != eot })
            var passages = try PassageBatcher(documents: [text], tokenizer: tokenizer, maxLength: maxLength, seed: seed).passages
            if story.last != eot && passages.count > 1 { passages.removeLast() }  // cut off by the context, mid-sentence
            guard !passages.isEmpty else { continue }
            let chosen = passages[generator.nextInt(below: passages.count)]
            texts.append(try tokenizer.decode(chosen.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return (texts, Date().timeIntervalSince(start) / Double(count))
    }

    /// Continuations of held-out passages that have a successor in their document, at each guidance weight
    /// (conditional denoisers), and from each autoregressive baseline given the prompt as text.
    func continuations(
        _ base: GenerationConfig, heldOut: [Passage], baselines: [(name: String, model: GPT)],
        into results: inout GenerationResults
    ) throws {
        guard system.denoiser.config.contextWidth > 0, !plan.sweepGuidance.isEmpty else { return }
        let pairs = zip(heldOut, heldOut.dropFirst()).filter { $0.0.document == $0.1.document && $0.1.index == $0.0.index + 1 }.prefix(
            plan.prompts)
        guard pairs.count >= 2 else { return }
        results.prompts = pairs.count
        let truth = try pairs.map { try tokenizer.decode($0.1.tokens.map(Int.init)).trimmingCharacters(in: .whitespacesAndNewlines) }
        let condition = system.autoencoder.encode(pairs.map(\.0.tokens))  // [P, K, d]
        let lm = system.autoencoder.languageModel
        let judge = judges.sentenceEncoder
        let truthFeatures = try GenerationScorer.read(truth, model: lm, tokenizer: tokenizer).features
        let truthJudged = judge?.embed(truth)
        func point(_ name: String, guidance: Double?, steps: Int?, _ texts: [String], _ seconds: Double) throws
            -> GenerationResults.ContinuationPoint
        {
            let features = try GenerationScorer.read(texts, model: lm, tokenizer: tokenizer).features
            let judgeMAUVE = judge.map { MAUVE(human: truthJudged!, model: $0.embed(texts), options: plan.mauveOptions).score }
            return .init(
                system: name, guidance: guidance, steps: steps, rougeL: RougeL.meanF(references: truth, hypotheses: texts),
                mauve: MAUVE(human: truthFeatures, model: features, options: plan.mauveOptions).score, judgeMAUVE: judgeMAUVE,
                secondsPerSample: seconds)
        }
        for topP in [nil] + plan.decodeTopP.map(Optional.some) {
            var config = base
            config.decoding = topP.map { SamplingOptions(temperature: 1, topP: $0) } ?? base.decoding
            let name = "diffusion" + (topP.map { ", decoded with top-p \($0)" } ?? ", greedy decoding")
            for weight in plan.sweepGuidance {
                progress("continuations: \(name), guidance \(weight)")
                config.guidance = weight
                let (texts, seconds, _) = try diffusionSamples(config, count: pairs.count, seed: 200, condition: condition)
                results.continuation.append(try point(name, guidance: Double(weight), steps: base.steps, texts, seconds))
            }
        }
        for baseline in baselines {
            progress("continuations: \(baseline.name)")
            let (texts, seconds) = try autoregressiveSamples(
                baseline.model, count: pairs.count, seed: 200,
                prompts: pairs.map { $0.0.tokens.map(Int.init) })
            results.continuation.append(try point(baseline.name, guidance: nil, steps: nil, texts, seconds))
        }
    }
}
