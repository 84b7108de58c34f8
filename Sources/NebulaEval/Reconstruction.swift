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

    public init(referenceTokens: [[Int]], reconstructedTokens: [[Int]],
                referenceTexts: [String], reconstructedTexts: [String]) {
        tokenAccuracy = Self.tokenAccuracy(references: referenceTokens, reconstructions: reconstructedTokens)
        exactMatch = Self.exactMatchRate(references: referenceTokens, reconstructions: reconstructedTokens)
        bleu4 = BLEU.corpus(hypotheses: reconstructedTexts, references: referenceTexts).score
        rougeL = RougeL.meanF(references: referenceTexts, hypotheses: reconstructedTexts)
    }

    /// Positionwise accuracy over the reference lengths: the i-th reference token counts as right when
    /// the reconstruction has the same token at i (a missing position is wrong; extra tokens past the
    /// reference's end are not counted). Summed over all passages, then divided.
    public static func tokenAccuracy<Token: Equatable>(references: [[Token]], reconstructions: [[Token]]) -> Double {
        precondition(references.count == reconstructions.count, "tokenAccuracy: \(references.count) references, \(reconstructions.count) reconstructions")
        var right = 0, total = 0
        for (reference, reconstruction) in zip(references, reconstructions) {
            total += reference.count
            right += zip(reference, reconstruction).filter { $0 == $1 }.count
        }
        return total == 0 ? 0 : Double(right) / Double(total)
    }

    /// Share of passages reconstructed token for token, length included.
    public static func exactMatchRate<Token: Equatable>(references: [[Token]], reconstructions: [[Token]]) -> Double {
        precondition(references.count == reconstructions.count, "exactMatchRate: \(references.count) references, \(reconstructions.count) reconstructions")
        guard !references.isEmpty else { return 0 }
        return Double(zip(references, reconstructions).filter { $0 == $1 }.count) / Double(references.count)
    }
}
