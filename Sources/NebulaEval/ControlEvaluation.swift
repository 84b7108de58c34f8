import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText

/// A rule that labels a passage by its words alone: the labels of a classifier's training data, and a judge of
/// steered samples that no model of the loop ever saw.
public enum AttributeRule: String, CaseIterable, Sendable {
    /// "dialogue" when the passage holds a double quote (someone speaks), else "narration"
    /// (`scripts/dialogue_labels.py` labels the shipped classifier's passages the same way).
    case dialogue

    /// The labels the rule gives.
    public var labels: [String] {
        switch self {
        case .dialogue: return ["dialogue", "narration"]
        }
    }

    /// The rule's label of `text`.
    public func label(of text: String) -> String {
        switch self {
        case .dialogue: return text.contains("\"") || text.contains("\u{201C}") ? "dialogue" : "narration"
        }
    }
}

/// The attribute-control protocol: the loop steered towards a label by classifier guidance at several scales, judged
/// by a rule the loop never used (``AttributeRule``), beside held-out human passages, the unguided loop (scale 0) and
/// the LM alone — unprompted, and prompted with the first sentence of a held-out passage that has the label (its
/// continuation alone is judged by the rule; the whole passage by the judges). Columns: the rule's success rate,
/// the guiding classifier's own mean p(label) of the loop rows' words encoded again, MAUVE on the judge encoder's
/// features against other held-out passages, the judge LM's perplexity, distinct-2 and seconds per passage.
public struct ControlEvaluation {
    /// What is run, and on how many samples.
    public struct Plan: Sendable {
        /// Passages per row.
        public var samples = 150
        /// Guidance scales of the loop rows (0: the unguided loop).
        public var scales: [Float] = [0, 1, 2, 4, 8]
        /// What the classifier's gradient moves.
        public var target = ClassifierGuidance.Target.estimate
        /// Loops per passage, the best kept by the classifier's p(label) of the decoded words encoded again.
        public var candidates = 1
        /// The loop's settings (the bundle's defaults where nil).
        public var loop = GenerationRequest(steps: 50)
        /// Nucleus of the LM rows.
        public var topP: Float = 0.95
        public var seed: UInt64 = 0
        public init() {}
    }

    /// One row's figures.
    public struct Row: Codable, Sendable, Equatable {
        public var name: String
        /// The guidance scale (loop rows).
        public var scale: Float?
        /// Share of the passages the rule gives the asked label.
        public var success: Double
        /// The guiding classifier's mean p(label) of the passages' words encoded again (loop rows): what the guide
        /// reads in the text.
        public var classifierProbability: Double?
        public var judgeMAUVE: Double?
        public var judgePerplexity: Double?
        public var distinct2: Double
        public var secondsPerPassage: Double
        public var examples: [String]

        enum CodingKeys: String, CodingKey {
            case name, scale, success, classifierProbability = "classifier_probability", judgeMAUVE = "judge_mauve"
            case judgePerplexity = "judge_perplexity", distinct2 = "distinct_2", secondsPerPassage = "seconds_per_passage", examples
        }
    }

    public let system: LatentDiffusion
    public let tokenizer: any Tokenizer
    public let classifier: LatentClassifier
    public let label: String
    public let rule: AttributeRule
    public let judges: GenerationJudges
    public let plan: Plan

    public init(
        system: LatentDiffusion, tokenizer: any Tokenizer, classifier: LatentClassifier, label: String, rule: AttributeRule,
        judges: GenerationJudges, plan: Plan
    ) throws {
        guard rule.labels.contains(label) else {
            throw EvaluationError("the rule \(rule.rawValue) gives the labels \(rule.labels), not \"\(label)\"")
        }
        _ = try classifier.labelIndex(label)
        (self.system, self.tokenizer, self.classifier, self.label, self.rule) = (system, tokenizer, classifier, label, rule)
        (self.judges, self.plan) = (judges, plan)
    }

    /// Every row, from held-out passages (token ids, whole sentences): the even ones are the judges' MAUVE reference,
    /// the odd ones the human row, and the first sentences of odd ones with the label prompt the LM.
    public func run(heldOut: [[Int]], progress: (String) -> Void = { _ in }) throws -> [Row] {
        let texts = try heldOut.map { try tokenizer.decode($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        let reference = Array(texts.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).prefix(plan.samples))
        let human = Array(texts.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        let referenceFeatures = judges.sentenceEncoder?.embed(reference)
        func row(
            _ name: String, scale: Float? = nil, _ passages: [String], judged: [String]? = nil, seconds: Double, probability: Double? = nil
        )
            throws -> Row
        {
            let success = Double((judged ?? passages).filter { rule.label(of: $0) == label }.count) / Double(max(1, passages.count))
            var mauve: Double? = nil
            if let encoder = judges.sentenceEncoder, let referenceFeatures {
                mauve = MAUVE(human: referenceFeatures, model: encoder.embed(passages)).score
            }
            let perplexity = try judges.languageModel.map {
                try GenerationScorer.perplexity(of: passages, model: $0.model, tokenizer: $0.tokenizer)
            }
            return Row(
                name: name, scale: scale, success: success, classifierProbability: probability, judgeMAUVE: mauve,
                judgePerplexity: perplexity,
                distinct2: Diversity.distinct(2, in: passages), secondsPerPassage: seconds, examples: Array(passages.prefix(5)))
        }
        var rows = [try row("human (held-out)", Array(human.prefix(plan.samples)), seconds: 0)]

        let config = try system.configuration(for: plan.loop)
        let target = try classifier.labelIndex(label)
        for scale in plan.scales {
            progress("the loop, classifier scale \(scale)")
            let steering = try ClassifierGuidance(classifier: classifier, label: label, scale: scale, target: plan.target)
            var generator = SeededGenerator(seed: plan.seed)
            let begin = Date()
            var passages: [String] = [], probability = 0.0
            for first in stride(from: 0, to: plan.samples, by: 50) {
                let tokens = system.steeredPassages(
                    count: min(50, plan.samples - first), config, steering: steering, candidates: plan.candidates, generator: &generator)
                probability += system.labelProbabilities(of: tokens, classifier, label: target).reduce(0, +)
                passages += try tokens.map { try system.autoencoder.passageText($0, tokenizer: tokenizer) }
            }
            let seconds = Date().timeIntervalSince(begin) / Double(plan.samples)
            rows.append(
                try row("loop, scale \(scale)", scale: scale, passages, seconds: seconds, probability: probability / Double(plan.samples)))
        }

        let lm = system.autoencoder.languageModel
        let eot = system.autoencoder.endOfText
        let length = system.autoencoder.config.maxLength
        var generator = SeededGenerator(seed: plan.seed)
        func write(_ prompt: [Int]) throws -> (whole: String, continuation: String) {
            let tokens = lm.generate(
                prompt: [eot] + prompt, maxTokens: length - prompt.count, options: SamplingOptions(temperature: 1, topP: plan.topP),
                stopToken: eot, generator: &generator
            ).filter { $0 != eot }
            let whole = SentenceSplitter.completeSentences(in: try tokenizer.decode(prompt + tokens))
            return (whole.trimmingCharacters(in: .whitespacesAndNewlines), String(whole.dropFirst(try tokenizer.decode(prompt).count)))
        }
        progress("the LM alone")
        var begin = Date()
        let unprompted = try (0..<plan.samples).map { _ in try write([]).whole }
        rows.append(try row("LM alone", unprompted, seconds: Date().timeIntervalSince(begin) / Double(plan.samples)))

        let prompts = try human.filter { rule.label(of: $0) == label }.compactMap { passage -> [Int]? in
            let first = String(SentenceSplitter.sentences(in: passage).first ?? "")
            return first.isEmpty || rule.label(of: first) != label ? nil : try tokenizer.encode(first)
        }.prefix(plan.samples)
        if !prompts.isEmpty {
            progress("the LM alone, prompted with \(prompts.count) held-out first sentences labelled \(label)")
            begin = Date()
            let written = try prompts.map { try write($0) }
            rows.append(
                try row(
                    "LM alone, \(label) first sentence", written.map(\.whole), judged: written.map(\.continuation),
                    seconds: Date().timeIntervalSince(begin) / Double(prompts.count)))
        }
        return rows
    }
}
