import Foundation
import NebulaModels
import NebulaTensor
import NebulaText

/// The quality figures of one set of texts (generated, or human as a baseline).
public struct GenerationScores: Codable, Sendable, Equatable {
    /// MAUVE against the held-out human reference, 0–1 (higher: closer to human text).
    public var mauve: Double
    /// exp(mean per-token negative log-likelihood) under the scoring language model.
    public var perplexity: Double
    /// ∏_{n=2..4} distinct-n over the set (LD4LG's diversity), 0–1.
    public var diversity: Double
    public var distinct1: Double
    public var distinct2: Double
    /// Share of distinct first-five-word openings, 0–1.
    public var uniqueOpenings: Double
    /// Share of the texts' word 4-grams found in the training corpus, 0–1.
    public var memorization: Double
    /// Mean length in words.
    public var meanWords: Double
    /// MAUVE on the features of an independent sentence encoder (``GenerationJudges/sentenceEncoder``), when one judged.
    public var judgeMAUVE: Double? = nil
    /// Perplexity under an independent judge LM (``GenerationJudges/languageModel``), when one judged.
    public var judgePerplexity: Double? = nil

    enum CodingKeys: String, CodingKey {
        case mauve, perplexity, diversity, distinct1 = "distinct_1", distinct2 = "distinct_2"
        case uniqueOpenings = "unique_openings", memorization, meanWords = "mean_words"
        case judgeMAUVE = "judge_mauve", judgePerplexity = "judge_perplexity"
    }

    /// The figures every scoring has, in a fixed order, with their names, for tables and averages.
    public static let names = [
        "mauve", "perplexity", "diversity", "distinct_1", "distinct_2", "unique_openings", "memorization", "mean_words"
    ]
    /// The figures only the independent judges give.
    public static let judgeNames = ["judge_mauve", "judge_perplexity"]
    public var values: [Double] { [mauve, perplexity, diversity, distinct1, distinct2, uniqueOpenings, memorization, meanWords] }
    /// The figure called `name` (one of ``names`` or ``judgeNames``), NaN for an unknown name or a judge that did not judge.
    public func value(_ name: String) -> Double {
        switch name {
        case "judge_mauve": return judgeMAUVE ?? .nan
        case "judge_perplexity": return judgePerplexity ?? .nan
        default: return Self.names.firstIndex(of: name).map { values[$0] } ?? .nan
        }
    }
}

/// Models outside the system being judged: a sentence encoder trained by others, whose features MAUVE
/// reads, and a language model that neither the decoder nor the denoiser ever saw, whose perplexity
/// scores fluency. The frozen LM's own figures stay beside theirs: it is fused into the decoder, so it
/// is judge of its own text.
public struct GenerationJudges {
    public var sentenceEncoder: SentenceEncoder?
    public var languageModel: (model: GPT, tokenizer: any Tokenizer)?

    public init(sentenceEncoder: SentenceEncoder? = nil, languageModel: (model: GPT, tokenizer: any Tokenizer)? = nil) {
        self.sentenceEncoder = sentenceEncoder
        self.languageModel = languageModel
    }
}

/// Scores sets of texts the way LD4LG and the MAUVE paper do, against one held-out human reference:
/// MAUVE on the scoring LM's mean-pooled final hidden states, perplexity under that LM, diversity,
/// distinct-n, unique openings and 4-gram memorization against the training corpus.
///
/// ```swift
/// let scorer = GenerationScorer(model: lm, tokenizer: tok, reference: heldOut, trainingDocuments: train)
/// let scores = try scorer.score(samples)      // GenerationScores
/// ```
public struct GenerationScorer {
    public let model: GPT
    public let tokenizer: any Tokenizer
    public let mauveOptions: MAUVE.Options
    public let judges: GenerationJudges
    let referenceFeatures: [[Float]]
    let judgeReferenceFeatures: [[Float]]?
    let index: NGramIndex

    public init(
        model: GPT, tokenizer: any Tokenizer, reference: [String], trainingDocuments: [String],
        mauveOptions: MAUVE.Options = MAUVE.Options(), judges: GenerationJudges = GenerationJudges()
    ) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.mauveOptions = mauveOptions
        self.judges = judges
        index = NGramIndex(documents: trainingDocuments)
        referenceFeatures = try Self.read(reference, model: model, tokenizer: tokenizer).features
        judgeReferenceFeatures = judges.sentenceEncoder?.embed(reference)
    }

    /// Every figure for `texts`.
    public func score(_ texts: [String]) throws -> GenerationScores {
        let read = try Self.read(texts, model: model, tokenizer: tokenizer)
        var judgeMAUVE: Double?
        if let encoder = judges.sentenceEncoder, let judgeReferenceFeatures {
            judgeMAUVE = MAUVE(human: judgeReferenceFeatures, model: encoder.embed(texts), options: mauveOptions).score
        }
        let judgePerplexity = try judges.languageModel.map { try Self.perplexity(of: texts, model: $0.model, tokenizer: $0.tokenizer) }
        return GenerationScores(
            mauve: MAUVE(human: referenceFeatures, model: read.features, options: mauveOptions).score,
            perplexity: read.perplexity,
            diversity: Diversity.score(of: texts),
            distinct1: Diversity.distinct(1, in: texts),
            distinct2: Diversity.distinct(2, in: texts),
            uniqueOpenings: Diversity.uniqueOpenings(of: texts),
            memorization: index.memorization(of: texts),
            meanWords: Double(texts.map { Words.split($0).count }.reduce(0, +)) / Double(max(1, texts.count)),
            judgeMAUVE: judgeMAUVE, judgePerplexity: judgePerplexity)
    }

    /// Perplexity of `texts` under another language model (same tokenizer family expected).
    public static func perplexity(of texts: [String], model: GPT, tokenizer: any Tokenizer) throws -> Double {
        try read(texts, model: model, tokenizer: tokenizer).perplexity
    }

    /// One pass of the LM over the texts, each read as `[EOT, tokens…]` (cut to the context): the mean of
    /// its final hidden states after each of the text's tokens as its feature vector, and the summed NLL of its tokens.
    public static func read(_ texts: [String], model: GPT, tokenizer: any Tokenizer, batchSize: Int = 32) throws
        -> (features: [[Float]], perplexity: Double)
    {
        guard let eot = tokenizer.endOfTextID else { throw EvaluationError("the tokenizer has no <|endoftext|> token") }
        let limit = model.config.contextLength
        let sequences = try texts.map { text -> [Int32] in
            [Int32(eot)] + (try tokenizer.encode(text, allowedSpecial: .none)).prefix(limit - 1).map(Int32.init)
        }
        let (c, v) = (model.config.width, model.config.vocabSize)
        var features: [[Float]] = []
        var nll = 0.0, count = 0
        withNoGrad {
            for start in stride(from: 0, to: sequences.count, by: batchSize) {
                let chunk = Array(sequences[start..<min(start + batchSize, sequences.count)])
                let length = chunk.map(\.count).max()!
                var ids = [Int32](repeating: Int32(eot), count: chunk.count * length)  // right-padded: causal reads ignore pads
                for (b, s) in chunk.enumerated() { for (t, id) in s.enumerated() { ids[b * length + t] = id } }
                let hiddenTensor = model.hiddenStates(ids, batch: chunk.count, length: length).final  // [B, T, C]
                let hidden = hiddenTensor.data
                let logProbs = model.logits(hiddenTensor).logSoftmax().data  // [B, T, V]
                for (b, s) in chunk.enumerated() {
                    var mean = [Float](repeating: 0, count: c)
                    let positions = s.count > 1 ? 1..<s.count : 0..<1  // after each text token
                    for t in positions {
                        let row = (b * length + t) * c
                        for j in 0..<c { mean[j] += hidden[row + j] / Float(positions.count) }
                    }
                    features.append(mean)
                    for t in 1..<s.count {
                        nll -= Double(logProbs[(b * length + t - 1) * v + Int(s[t])])
                        count += 1
                    }
                }
            }
        }
        return (features, count > 0 ? exp(nll / Double(count)) : .nan)
    }
}

/// A failure of an evaluation's inputs, as one line.
public struct EvaluationError: LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var errorDescription: String? { message }
}
