import ArgumentParser
import Foundation
import NebulaCore
import NebulaDiffusion
import NebulaEval
import NebulaModels
import NebulaNN
import NebulaText

/// `nebula eval control`: the attribute-control protocol (`ControlEvaluation`) on the bundle's held-out passages.
struct EvaluateControl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "Attribute control: the loop steered by a classifier at several scales, judged by a rule it never used.",
        discussion:
            "Rows: held-out human passages, the loop at every --scales value (0: unguided), the LM alone, and the LM alone prompted with held-out first sentences that have --label. Columns: the share of passages the rule labels --label, the classifier's own p(label), MAUVE on --judge features, --judge-lm perplexity, distinct-2, seconds per passage."
    )

    @OptionGroup var bundle: BundleOptions
    @Option(help: "The latent classifier folder that steers the loop.") var classifier: String
    @Option(help: "The label to steer towards.") var label: String
    @Option(help: "The rule that judges the samples (its labels must include --label): dialogue.") var rule: String = "dialogue"
    @Option(parsing: .upToNextOption, help: "Classifier guidance scales (0: the unguided loop).") var scales: [Float] = [0, 1, 2, 4, 8]
    @Option(
        help:
            "What the gradient moves: estimate (the step's x0 estimate, classifier at time 0) or noisy-latent (the noise estimate, classifier at the step's noise)."
    )
    var guidanceTarget: ClassifierGuidance.Target = .estimate
    @Option(help: "Loops per passage, the best kept by the classifier's p(label) of the decoded words encoded again.") var candidates = 1
    @Option(help: "Passages per row.") var samples = 150
    @Option(help: "Loop steps.") var steps = 50
    @Option(help: "Seed of the loop and the LM rows.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp(noiseScaleHelp)) var noiseScale: Float?
    @Option(name: .customLong("lm-prior"), help: ArgumentHelp(lmPriorHelp)) var languageModelPrior: Float?
    @Option(help: "A sentence encoder folder (`make judge`): MAUVE on its features.") var judge: String?
    @Option(name: .customLong("judge-lm"), help: "A language model the loop never saw (`make judge-lm`): perplexity under it.")
    var judgeLM: String?
    @Option(help: "Write the rows as JSON here.") var out: String?

    func validate() throws {
        guard samples >= 2, steps >= 1, candidates >= 1 else {
            throw ValidationError("--samples must be at least 2, --steps and --candidates positive")
        }
        guard !scales.isEmpty, scales.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw ValidationError("--scales must be one or more non-negative numbers")
        }
        guard AttributeRule(rawValue: rule) != nil else {
            throw ValidationError("--rule \(rule) is unknown: \(AttributeRule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        try reportingErrors {
            let (system, tokenizer) = try bundle.load()
            let guide = try LatentClassifier.load(from: fileURL(classifier))
            do { try guide.check(reads: system.autoencoder) } catch let error as LatentClassifierError {
                throw CommandError("--classifier \(classifier): \(error.message)")
            }
            let judges = GenerationJudges(
                sentenceEncoder: try judge.map { try SentenceEncoder(folder: fileURL($0)) },
                languageModel: try judgeLM.map {
                    (model: try GPT.load(from: fileURL($0)), tokenizer: try loadTokenizer(directory: fileURL($0)))
                })
            var plan = ControlEvaluation.Plan()
            (plan.samples, plan.scales, plan.seed, plan.target, plan.candidates) = (samples, scales, seed, guidanceTarget, candidates)
            plan.loop = GenerationRequest(steps: steps, noiseScale: noiseScale, languageModelPrior: languageModelPrior)
            let loop = try resolve(plan.loop, for: system)
            let evaluation: ControlEvaluation
            do {
                evaluation = try ControlEvaluation(
                    system: system, tokenizer: tokenizer, classifier: guide, label: label, rule: AttributeRule(rawValue: rule)!,
                    judges: judges,
                    plan: plan)
            } catch let error as LocalizedError {
                throw CommandError("--label \(label): \(error.errorDescription ?? "\(error)")")
            }
            let folders = try bundle.folders()
            let (spec, splits) = try corpusSplits(dataFolders: [folders.autoencoder, folders.languageModel], tokenizer: tokenizer)
            let heldOut = try PassageBatcher(
                documents: splits.validationDocuments, tokenizer: tokenizer, maxLength: system.autoencoder.config.maxLength, seed: spec.seed
            ).passages
            let rows = try evaluation.run(heldOut: heldOut.map { $0.tokens.map(Int.init) }) { printStatus("… \($0)") }
            print(
                "steering towards \"\(label)\", judged by the rule \(rule); \(samples) passages a row, best of \(candidates), \(loop.loopDescription), LM prior \(loop.languageModelPrior)"
            )
            print("row                                   success  p(label)  judge MAUVE  judge ppl  distinct-2  s/passage")
            for row in rows {
                func cell(_ value: Double?, _ format: String, _ width: Int) -> String {
                    value.map { String(format: format, $0) } ?? String(repeating: " ", count: width - 1) + "–"
                }
                print(
                    row.name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: " %8.3f", row.success)
                        + " " + cell(row.classifierProbability, "%9.3f", 9) + " " + cell(row.judgeMAUVE, "%12.3f", 12) + " "
                        + cell(row.judgePerplexity, "%10.1f", 10) + String(format: " %11.3f %10.3f", row.distinct2, row.secondsPerPassage))
            }
            for row in rows { print("\n\(row.name):\n" + row.examples.prefix(3).map { "  " + $0 }.joined(separator: "\n")) }
            if let out {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try DurableFile.write(try encoder.encode(rows), to: fileURL(out))
            }
        }
    }
}
