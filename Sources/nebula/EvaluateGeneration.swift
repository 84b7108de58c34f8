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
    @Option(help: "ddpm or ddim (default: ddpm, or the sampler a distilled denoiser was distilled for).") var sampler: SamplerKind?
    @Flag(help: "Score the bundle's own denoiser even where the bundle has one distilled for --steps (distilled/N-steps).")
    var undistilled = false
    @Option(help: ArgumentHelp("For every diffusion row. " + noiseScaleHelp)) var noiseScale: Float?
    @Flag(inversion: .prefixedNo, help: ArgumentHelp("For every diffusion row. " + renormalizeHelp)) var renormalizeEstimates: Bool?
    @Option(help: ArgumentHelp("For the main diffusion row and the controls. " + decoderHelp)) var decoder: PassageDecoder?
    @Option(
        name: .customLong("lm-prior"), parsing: .upToNextOption,
        help: ArgumentHelp("Extra diffusion rows decoded greedily with these LM priors. " + lmPriorHelp)) var languageModelPriors: [Float] =
            []
    @Option(
        parsing: .upToNextOption,
        help: "Extra diffusion rows whose latents the LM decodes by sampling with these top-p values (the main row decodes greedily).")
    var decodeTopP: [Float] = []
    @Option(help: "Autoregressive baselines to add: LM folders (same tokenizer), e.g. the matched-size LM.") var arLm: [String] = []
    @Option(help: "Nucleus (top-p) of the autoregressive baselines.") var topP: Float = 0.95
    @Option(parsing: .upToNextOption, help: "Loop steps to sweep (one seed, --sweep-samples each).") var sweepSteps: [Int] = [
        5, 10, 25, 50, 100, 250
    ]
    @Option(help: "Samples per point of the steps sweep.") var sweepSamples = 200
    @Option(parsing: .upToNextOption, help: "Guidance weights to sweep on continuations (conditional denoisers only).") var sweepGuidance:
        [Float] = [1, 2, 3]
    @Option(help: "Held-out prompts for the continuation sweep.") var prompts = 200
    @Option(help: "MAUVE k-means clusters (default: samples / 10).") var clusters: Int?
    @Option(help: "Training passages whose latents' mean and covariance the Gaussian control row samples from.") var gaussianPassages = 4000
    @Option(
        help:
            "How those passages are cut, as train diffusion's --passages: packed (like the held-out passages) or the fixed windows a denoiser is trained on."
    )
    var gaussianPassageStarts: PassageBatcher.Starts = .packed
    @Option(help: ArgumentHelp("For every latent-decoded row (an experiment: on generated latents it costs fluency). " + refineHelp))
    var refine = 0
    @Option(
        help:
            "A sentence encoder folder (sentence-transformers layout; all-MiniLM-L6-v2 from `make judge`): every row also gets MAUVE on its features."
    ) var judge: String?
    @Option(
        name: .customLong("judge-lm"),
        help: "A language model the loop never saw (`make judge-lm`): every row also gets perplexity under it.") var judgeLM: String?
    @Option(
        help:
            "Also score the main diffusion row's x0 estimates after this many of its steps, decoded like its samples (0: off): is the final passage as fluent as the early estimate?"
    ) var estimateStep = 10
    @Flag(
        help: "Score only the diffusion rows beside human text (no baselines, steps sweep or continuations): a quick check of a denoiser.")
    var diffusionOnly = false
    @Flag(
        inversion: .prefixedNo,
        help:
            "The control rows: Gaussian latents and the latents' Gaussian, decoded with no loop (they depend on the decode, not the loop).")
    var controls = true
    @Option(help: "Write the results here (JSON).") var out: String

    func validate() throws {
        guard samples >= 2, seeds >= 1, steps >= 1, sweepSamples >= 2, prompts >= 2, gaussianPassages >= 2 else {
            throw ValidationError(
                "--samples, --sweep-samples, --prompts and --gaussian-passages need at least 2, --seeds and --steps at least 1")
        }
        guard sweepSteps.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--sweep-steps must be positive") }
        guard estimateStep >= 0, estimateStep < steps || estimateStep == 0 else {
            throw ValidationError("--estimate-step must be between 0 (off) and --steps − 1 (\(steps - 1)), got \(estimateStep)")
        }
        try validateFlags(plan.loop)
        for weight in languageModelPriors { try validateLanguageModelPrior(weight) }
        for p in decodeTopP { try validateFlags(GenerationRequest(decodeTopP: p)) }
        try validateRefine(refine)
    }

    /// The evaluation these flags ask for.
    var plan: GenerationEvaluation.Plan {
        var plan = GenerationEvaluation.Plan()
        plan.samples = samples
        plan.seeds = seeds
        plan.loop = GenerationRequest(
            steps: steps, sampler: sampler, noiseScale: noiseScale, renormalizeEstimates: renormalizeEstimates, decoder: decoder)
        plan.languageModelPriors = languageModelPriors
        plan.decodeTopP = decodeTopP
        plan.baselineTopP = topP
        plan.sweepSteps = sweepSteps
        plan.sweepSamples = sweepSamples
        plan.sweepGuidance = sweepGuidance
        plan.prompts = prompts
        plan.clusters = clusters
        plan.gaussianPassages = gaussianPassages
        plan.gaussianPassageStarts = gaussianPassageStarts
        plan.refine = refine
        plan.estimateStep = estimateStep
        (plan.diffusionOnly, plan.controls) = (diffusionOnly, controls)
        return plan
    }

    func run() throws {
        try reportingErrors {
            let output = fileURL(out)
            do {  // fail now, not after an hour of sampling
                try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw CommandError(
                    "\(output.deletingLastPathComponent().path): cannot create the results folder (\(error.localizedDescription))")
            }
            let judges = GenerationJudges(
                sentenceEncoder: try judge.map { try SentenceEncoder(folder: fileURL($0)) },
                languageModel: try judgeLM.map { (try GPT.load(from: fileURL($0)), try loadTokenizer(directory: fileURL($0))) })
            let (system, tokenizer) = try bundle.load(for: plan.loop, distilled: !undistilled)
            _ = try resolve(plan.loop, for: system)  // a request the bundle refuses fails here, in the flags' words
            let folders = try bundle.folders()
            let (spec, splits) = try corpusSplits(dataFolders: [folders.autoencoder, folders.languageModel], tokenizer: tokenizer)
            let baselines = try arLm.map { path in
                (name: "AR LM \(fileURL(path).lastPathComponent)", model: try GPT.load(from: fileURL(path)))
            }
            var evaluation = GenerationEvaluation(
                system: system, tokenizer: tokenizer, trainDocuments: splits.trainDocuments,
                heldOutDocuments: splits.validationDocuments, passageSeed: spec.seed,
                baselines: baselines, judges: judges, plan: plan)
            evaluation.progress = { FileHandle.standardError.write(Data("… \($0)\n".utf8)) }
            let results = try evaluation.run(command: (["nebula"] + CommandLine.arguments.dropFirst()).joined(separator: " "))
            try writeJSON(results, output)
            printSummary(results)
        }
    }

    func printSummary(_ results: GenerationResults) {
        for row in results.rows {
            let figures = (GenerationScores.judgeNames + ["mauve", "perplexity", "diversity", "distinct_2", "memorization"]).compactMap {
                key in
                row.mean[key].map { String(format: "%@ %.3f±%.3f", key, $0, row.std[key] ?? 0) }
            }
            print("\(row.name): " + figures.joined(separator: ", ") + String(format: ", %.3f s/sample", row.secondsPerSample))
        }
        for point in results.stepsSweep {
            let judged = GenerationScores.judgeNames.filter { !point.scores.value($0).isNaN }.map {
                String(format: ", %@ %.3f", $0, point.scores.value($0))
            }
            print(
                String(format: "%4d steps: mauve %.3f, perplexity %.2f", point.steps, point.scores.mauve, point.scores.perplexity)
                    + judged.joined() + String(format: ", %.3f s/sample", point.secondsPerSample))
        }
        for point in results.continuation {
            print(
                "continuation, \(point.system)\(point.guidance.map { " w=\($0)" } ?? ""): "
                    + String(format: "ROUGE-L %.3f, MAUVE %.3f", point.rougeL, point.mauve)
                    + (point.judgeMAUVE.map { String(format: ", judge MAUVE %.3f", $0) } ?? ""))
        }
        print("results → \(out)")
    }

}
