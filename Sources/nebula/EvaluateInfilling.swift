import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaEval
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// `nebula eval infill`: the infilling protocol (`InfillingEvaluation`) on the bundle's held-out passages.
struct EvaluateInfilling: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infill",
        abstract: "Infilling on held-out passages: the loop against the LM alone and the zeroed-gap decoder.",
        discussion:
            "Each held-out passage is cut into prefix / middle (--min-gap to --max-gap tokens) / suffix; every row writes the middle, scored by token F1 and ROUGE-L against the true middle, name consistency and (--judge-lm) the judge's perplexity of the whole passage."
    )

    @OptionGroup var bundle: BundleOptions
    @Option(help: "Passages to infill.") var passages = 300
    @Option(help: "Shortest true middle, in tokens.") var minGap = 8
    @Option(help: "Longest true middle, in tokens.") var maxGap = 16
    @Option(help: "Loop steps.") var steps = 50
    @Option(help: "How many times each step is taken (RePaint resampling; 1: replacement only).") var resample = 1
    @Option(help: "Loops per passage, one kept by --select (default: the bundle's sampling.infill.candidates, else 1).")
    var candidates: Int?
    @Option(name: .customLong("select"), help: ArgumentHelp(infillSelectionHelp)) var selection: InfillSelection = .likelihood
    @Option(help: "Where the loop starts: 1 from noise, below 1 from the encoded passage (the LM's filler in the gap) noised to it.")
    var strength: Float = 1
    @Option(help: "Seed of the cuts and the loop.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp(noiseScaleHelp)) var noiseScale: Float?
    @Option(name: .customLong("lm-prior"), help: ArgumentHelp(lmPriorHelp)) var languageModelPrior: Float?
    @Option(help: "Decode the loop's latents by sampling with this top-p (default: greedy): more varied candidates.")
    var decodeTopP: Float?
    @Option(
        name: .customLong("judge-lm"),
        help: "A language model the loop never saw (`make judge-lm`): the perplexity of every row's whole passages.") var judgeLM: String?
    @Option(help: "Write the rows as JSON here.") var out: String?

    func validate() throws {
        guard passages >= 1, steps >= 1, resample >= 1, candidates ?? 1 >= 1 else {
            throw ValidationError("--passages, --steps, --resample and --candidates must be positive")
        }
        guard 1 <= minGap, minGap <= maxGap else { throw ValidationError("--min-gap must be positive and at most --max-gap") }
        guard strength > 0 && strength <= 1 else { throw ValidationError("--strength must be in (0, 1], got \(strength)") }
    }

    func run() throws {
        try reportingErrors {
            let (system, tokenizer) = try bundle.load()
            let judge = try judgeLM.map { (model: try GPT.load(from: fileURL($0)), tokenizer: try loadTokenizer(directory: fileURL($0))) }
            var plan = InfillingEvaluation.Plan()
            (plan.passages, plan.gaps, plan.resample, plan.seed) = (passages, minGap...maxGap, resample, seed)
            (plan.candidates, plan.selection, plan.strength) = (system.infillCandidates(candidates), selection, strength)
            plan.loop = GenerationRequest(
                steps: steps, noiseScale: noiseScale, languageModelPrior: languageModelPrior, decodeTopP: decodeTopP)
            _ = try resolve(plan.loop, for: system, infilling: true)
            let folders = try bundle.folders()
            let (spec, splits) = try corpusSplits(dataFolders: [folders.autoencoder, folders.languageModel], tokenizer: tokenizer)
            let heldOut = try PassageBatcher(
                documents: splits.validationDocuments, tokenizer: tokenizer, maxLength: system.autoencoder.config.maxLength, seed: spec.seed
            ).passages
            let evaluation = InfillingEvaluation(system: system, tokenizer: tokenizer, judge: judge, plan: plan)
            let cuts = evaluation.cuts(of: heldOut.map { $0.tokens.map(Int.init) })
            let rows = try evaluation.run(cuts) { printStatus("… \($0)") }
            print(
                "\(cuts.count) held-out passages, middles of \(minGap)–\(maxGap) tokens, \(steps) steps, resample \(resample), best of \(plan.candidates) by \(selection), strength \(strength)"
            )
            print("row                              token F1  ROUGE-L  names  judge ppl   s/passage")
            for row in rows {
                let name = row.name.padding(toLength: 32, withPad: " ", startingAt: 0)
                let judged = row.judgePerplexity.map { String(format: "%9.1f", $0) } ?? "        –"
                print(
                    name + String(format: " %8.3f %8.3f %6.2f ", row.tokenF1, row.rougeL, row.nameConsistency) + judged
                        + String(format: " %11.3f", row.secondsPerPassage))
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
