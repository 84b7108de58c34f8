/// ROUGE-L (Lin 2004): the longest common subsequence (LCS) of reference and hypothesis words, as
/// precision LCS/|hypothesis|, recall LCS/|reference| and their harmonic mean F (β = 1), the numbers
/// `rouge_score.RougeScorer(['rougeL'])` reports — given a whitespace tokenizer; rouge-score's own
/// default tokenizer also lowercases and drops everything but `[a-z0-9]`.
///
/// ```swift
/// let r = RougeL(reference: "the cat sat on the mat", hypothesis: "the cat on a mat")
/// r.f                                           // LCS "the cat on mat" = 4: P = 4/5, R = 4/6, F ≈ 0.727
/// RougeL.meanF(references: refs, hypotheses: hyps, lowercased: true)
/// ```
public struct RougeL: Sendable, Equatable {
    public var precision: Double
    public var recall: Double
    public var f: Double

    /// ROUGE-L of one pair of texts, split into words (``Words``).
    public init(reference: String, hypothesis: String, lowercased: Bool = false) {
        self.init(
            reference: Words.split(reference, lowercased: lowercased),
            hypothesis: Words.split(hypothesis, lowercased: lowercased))
    }

    /// ROUGE-L of one pair of token sequences; 0 when either is empty.
    public init<Token: Equatable>(reference: [Token], hypothesis: [Token]) {
        let lcs = Double(Self.longestCommonSubsequence(reference, hypothesis))
        precision = hypothesis.isEmpty ? 0 : lcs / Double(hypothesis.count)
        recall = reference.isEmpty ? 0 : lcs / Double(reference.count)
        f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }

    /// The mean F over pairs (rouge-score's aggregate of per-pair scores), 0–1.
    public static func meanF(references: [String], hypotheses: [String], lowercased: Bool = false) -> Double {
        precondition(references.count == hypotheses.count, "RougeL: \(references.count) references, \(hypotheses.count) hypotheses")
        guard !references.isEmpty else { return 0 }
        let total = zip(references, hypotheses).reduce(0.0) {
            $0 + RougeL(reference: $1.0, hypothesis: $1.1, lowercased: lowercased).f
        }
        return total / Double(references.count)
    }

    /// Length of the LCS by dynamic programming, one row of the table at a time.
    static func longestCommonSubsequence<Token: Equatable>(_ a: [Token], _ b: [Token]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: b.count + 1), current = previous
        for x in a {
            for (j, y) in b.enumerated() {
                current[j + 1] = x == y ? previous[j] + 1 : max(previous[j + 1], current[j])
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
