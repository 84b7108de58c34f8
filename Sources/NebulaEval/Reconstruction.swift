import Foundation
import NebulaModels
import NebulaTensor
import NebulaText

/// How faithfully an autoencoder gives its passages back: token accuracy and exact match on token ids,
/// BLEU-4 and ROUGE-L on the texts. Encodes to JSON with the keys `nebula reconstruct --json` prints.
///
/// ```swift
/// let m = ReconstructionMetrics(
///     referenceTokens: [[5, 6, 7]], reconstructedTokens: [[5, 6, 8]],
///     referenceTexts: ["a b c"], reconstructedTexts: ["a b d"])
/// m.tokenAccuracy        // 2/3
/// m.exactMatch           // 0
/// ```
public struct ReconstructionMetrics: Codable, Sendable, Equatable {
    /// Share of reference positions whose token came back in the same position (0–1).
    public var tokenAccuracy: Double
    /// Share of passages whose tokens came back exactly (0–1).
    public var exactMatch: Double
    /// Corpus BLEU-4 on words, 0–100 (``BLEU/corpus(hypotheses:references:tokenization:lowercased:maxOrder:smoothing:)``, sacrebleu's defaults).
    public var bleu4: Double
    /// Mean ROUGE-L F on words, 0–1 (``RougeL``).
    public var rougeL: Double

    enum CodingKeys: String, CodingKey {
        case tokenAccuracy = "token_accuracy", exactMatch = "exact_match", bleu4, rougeL = "rouge_l"
    }

    public init(
        referenceTokens: [[Int]], reconstructedTokens: [[Int]],
        referenceTexts: [String], reconstructedTexts: [String]
    ) {
        tokenAccuracy = Self.tokenAccuracy(references: referenceTokens, reconstructions: reconstructedTokens)
        exactMatch = Self.exactMatchRate(references: referenceTokens, reconstructions: reconstructedTokens)
        bleu4 = BLEU.corpus(hypotheses: reconstructedTexts, references: referenceTexts).score
        rougeL = RougeL.meanF(references: referenceTexts, hypotheses: reconstructedTexts)
    }

    /// Positionwise accuracy over the reference lengths: the i-th reference token counts as right when
    /// the reconstruction has the same token at i (a missing position is wrong; extra tokens past the
    /// reference's end are not counted). Summed over all passages, then divided.
    public static func tokenAccuracy<Token: Equatable>(references: [[Token]], reconstructions: [[Token]]) -> Double {
        precondition(
            references.count == reconstructions.count,
            "tokenAccuracy: \(references.count) references, \(reconstructions.count) reconstructions")
        var right = 0, total = 0
        for (reference, reconstruction) in zip(references, reconstructions) {
            total += reference.count
            right += zip(reference, reconstruction).filter { $0 == $1 }.count
        }
        return total == 0 ? 0 : Double(right) / Double(total)
    }

    /// Share of passages reconstructed token for token, length included.
    public static func exactMatchRate<Token: Equatable>(references: [[Token]], reconstructions: [[Token]]) -> Double {
        precondition(
            references.count == reconstructions.count,
            "exactMatchRate: \(references.count) references, \(reconstructions.count) reconstructions")
        guard !references.isEmpty else { return 0 }
        return Double(zip(references, reconstructions).filter { $0 == $1 }.count) / Double(references.count)
    }
}

/// The reconstruction protocol of `nebula reconstruct`: passages through an autoencoder's latent bottleneck and
/// back, scored (``ReconstructionMetrics``) beside the latents' statistics and the autoencoder's own losses.
///
/// ```swift
/// var evaluation = ReconstructionEvaluation(autoencoder: ae, tokenizer: tokenizer)
/// evaluation.refine = 8
/// let result = try evaluation.run(passages)     // result.metrics.bleu4, result.figures["latent_std"], …
/// ```
public struct ReconstructionEvaluation {
    public let autoencoder: LatentAutoencoder
    public let tokenizer: any Tokenizer
    /// Std of Gaussian noise added to every latent before decoding, as a fraction of the latents' own std.
    public var noise: Float = 0
    /// Greedy decoding, or nucleus sampling (seeded: the same passages give the same result).
    public var decoding = SamplingOptions(temperature: 0)
    /// The decoder to use (nil: the autoencoder's own).
    public var decoder: AutoencoderConfig.Decoder?
    /// The LM prior λ of the autoregressive decoder (nil: the λ it was trained with).
    public var languageModelPrior: Float?
    /// Rounds of latent-consistent decoding.
    public var refine = 0

    public init(autoencoder: LatentAutoencoder, tokenizer: any Tokenizer) {
        self.autoencoder = autoencoder
        self.tokenizer = tokenizer
    }

    /// What one run measured.
    public struct Result {
        public var metrics: ReconstructionMetrics
        public var referenceTexts: [String]
        public var reconstructedTexts: [String]
        /// The metrics, the latents' statistics (`latent_std`, `latent_norm`), the settings, the decoding speed and
        /// the autoencoder's diagnostics (`val_loss`, `val_loss_shuffled`, `latent_between_share`, …): what
        /// `nebula reconstruct --json` prints.
        public var figures: [String: Double]
    }

    /// Encodes `passages` (token ids, at most the autoencoder's maximum length each), decodes them in batches
    /// of 32, and scores the result.
    public func run(_ passages: [[Int32]]) throws -> Result {
        var z = autoencoder.encode(passages)  // [N, K, d]
        var generator = SeededGenerator(seed: 0)
        let values = z.data
        let mean = values.reduce(0, +) / Float(max(1, values.count))
        let latentStd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(max(1, values.count))).squareRoot()
        if noise > 0 { z = z + Tensor.randn(z.shape, std: noise * latentStd, generator: &generator) }
        var decoded: [[Int]] = []
        let started = Date()
        for start in stride(from: 0, to: passages.count, by: 32) {
            let rows = min(32, passages.count - start)
            decoded += autoencoder.decode(
                z.slice(axis: 0, start..<(start + rows)), options: decoding, decoder: decoder,
                languageModelPrior: languageModelPrior, refine: refine, generator: &generator)
        }
        let decodeSeconds = Date().timeIntervalSince(started)
        let referenceTexts = try passages.map { try tokenizer.decode($0.map(Int.init)) }
        let reconstructedTexts = try decoded.map { try tokenizer.decode($0) }
        let metrics = ReconstructionMetrics(
            referenceTokens: passages.map { $0.map(Int.init) }, reconstructedTokens: decoded,
            referenceTexts: referenceTexts, reconstructedTexts: reconstructedTexts)
        let d = autoencoder.config.latentWidth
        let norms = stride(from: 0, to: z.count, by: d).map { i in z.data[i..<(i + d)].map { Double($0 * $0) }.reduce(0, +).squareRoot() }
        var figures: [String: Double] = [
            "token_accuracy": metrics.tokenAccuracy, "exact_match": metrics.exactMatch, "bleu4": metrics.bleu4,
            "rouge_l": metrics.rougeL, "passages": Double(passages.count), "noise": Double(noise),
            "lm_prior": Double(languageModelPrior ?? autoencoder.config.languageModelPrior),
            "latent_std": Double(latentStd), "latent_norm": norms.reduce(0, +) / Double(norms.count),
            "passages_per_second": Double(passages.count) / decodeSeconds, "refine": Double(refine)
        ]
        let diagnostics = autoencoder.diagnostics(
            of: passages.map { Passage(tokens: $0) }, batches: (passages.count + 31) / 32,
            batchSize: 32)
        figures.merge(diagnostics) { a, _ in a }
        return Result(metrics: metrics, referenceTexts: referenceTexts, reconstructedTexts: reconstructedTexts, figures: figures)
    }
}
