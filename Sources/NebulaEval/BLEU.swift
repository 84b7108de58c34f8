import Foundation

/// BLEU (Papineni et al. 2002) as `sacrebleu` computes it: clipped n-gram precisions for n = 1...4, their
/// geometric mean, and the brevity penalty exp(1 − r/c) when the hypotheses are shorter than the
/// references. Scores are on sacrebleu's 0–100 scale and one reference per hypothesis.
///
/// Texts are split into words as sacrebleu's default `13a` tokenizer does (``Words/split13a(_:lowercased:)``),
/// so the numbers equal `sacrebleu.corpus_bleu(hyps, [refs])`; with `.whitespace` they equal
/// `tokenize='none'`. Generic token sequences (token ids) work too.
///
/// ```swift
/// let corpus = BLEU.corpus(hypotheses: ["the cat sat on the mat"], references: ["the cat sat on a mat"])
/// corpus.score                                            // 0–100
/// let one = BLEU.sentence(hypothesis: "the cat", reference: "the cat sat")   // smoothed, effective order
/// ```
public struct BLEU: Sendable, Equatable {
    /// How texts become words.
    public enum Tokenization: Sendable {
        /// sacrebleu's default `13a`: punctuation split off (``Words/split13a(_:lowercased:)``).
        case thirteenA
        /// Whitespace only (``Words/split(_:lowercased:)``), sacrebleu's `tokenize='none'`.
        case whitespace

        func words(_ text: String, lowercased: Bool) -> [Substring] {
            switch self {
            case .thirteenA: return Words.split13a(text, lowercased: lowercased)
            case .whitespace: return Words.split(text, lowercased: lowercased)
            }
        }
    }

    /// How a zero n-gram precision is replaced (Chen & Cherry 2014, as named in sacrebleu).
    public enum Smoothing: Sendable, Equatable {
        /// No smoothing: a zero precision makes the score 0.
        case none
        /// NIST "exp" (sacrebleu's default): the k-th zero precision becomes 1 / (2^k · total).
        case exponential
        /// A zero precision becomes `epsilon / total` (sacrebleu's default epsilon: 0.1).
        case floor(Double)
        /// Adds `k` to matches and totals of every order n ≥ 2 (sacrebleu's default k: 1).
        case addK(Double)
    }

    /// The score, 0–100.
    public var score: Double
    /// Clipped n-gram precision for each order, 0–100 (after smoothing).
    public var precisions: [Double]
    public var brevityPenalty: Double
    /// Sufficient statistics: clipped matches and hypothesis n-grams per order, total lengths.
    public var matches: [Int]
    public var totals: [Int]
    public var hypothesisLength: Int
    public var referenceLength: Int

    /// Corpus BLEU: statistics summed over all pairs, then one score (sacrebleu's `corpus_bleu`:
    /// exponential smoothing, all orders counted).
    public static func corpus(
        hypotheses: [String], references: [String], tokenization: Tokenization = .thirteenA,
        lowercased: Bool = false, maxOrder: Int = 4, smoothing: Smoothing = .exponential
    ) -> BLEU {
        corpus(
            hypotheses: hypotheses.map { tokenization.words($0, lowercased: lowercased) },
            references: references.map { tokenization.words($0, lowercased: lowercased) },
            maxOrder: maxOrder, smoothing: smoothing)
    }

    /// Corpus BLEU on token sequences.
    public static func corpus<Token: Hashable>(
        hypotheses: [[Token]], references: [[Token]], maxOrder: Int = 4, smoothing: Smoothing = .exponential
    ) -> BLEU {
        precondition(hypotheses.count == references.count, "BLEU: \(hypotheses.count) hypotheses, \(references.count) references")
        var matches = [Int](repeating: 0, count: maxOrder), totals = matches
        for (hypothesis, reference) in zip(hypotheses, references) {
            for n in 1...maxOrder {
                let (hits, count) = clippedMatches(hypothesis, reference, order: n)
                matches[n - 1] += hits
                totals[n - 1] += count
            }
        }
        return BLEU(
            matches: matches, totals: totals,
            hypothesisLength: hypotheses.reduce(0) { $0 + $1.count },
            referenceLength: references.reduce(0) { $0 + $1.count },
            smoothing: smoothing, effectiveOrder: false)
    }

    /// Sentence BLEU of one pair (sacrebleu's `sentence_bleu`: exponential smoothing, and orders the
    /// hypothesis is too short for are left out of the mean).
    public static func sentence(
        hypothesis: String, reference: String, tokenization: Tokenization = .thirteenA,
        lowercased: Bool = false, maxOrder: Int = 4, smoothing: Smoothing = .exponential
    ) -> BLEU {
        sentence(
            hypothesis: tokenization.words(hypothesis, lowercased: lowercased),
            reference: tokenization.words(reference, lowercased: lowercased),
            maxOrder: maxOrder, smoothing: smoothing)
    }

    /// Sentence BLEU on token sequences.
    public static func sentence<Token: Hashable>(
        hypothesis: [Token], reference: [Token], maxOrder: Int = 4, smoothing: Smoothing = .exponential
    ) -> BLEU {
        var matches: [Int] = [], totals: [Int] = []
        for n in 1...maxOrder {
            let (hits, count) = clippedMatches(hypothesis, reference, order: n)
            matches.append(hits)
            totals.append(count)
        }
        return BLEU(
            matches: matches, totals: totals, hypothesisLength: hypothesis.count,
            referenceLength: reference.count, smoothing: smoothing, effectiveOrder: true)
    }

    /// Hypothesis n-grams of one order that the reference has, each counted at most as often as it
    /// occurs there, and the number of hypothesis n-grams.
    static func clippedMatches<Token: Hashable>(_ hypothesis: [Token], _ reference: [Token], order n: Int) -> (Int, Int) {
        let hypothesisGrams = hypothesis.nGrams(n)
        guard !hypothesisGrams.isEmpty else { return (0, 0) }
        var available: [ArraySlice<Token>: Int] = [:]
        for gram in reference.nGrams(n) { available[gram, default: 0] += 1 }
        var hits = 0
        for gram in hypothesisGrams where available[gram, default: 0] > 0 {
            available[gram]! -= 1
            hits += 1
        }
        return (hits, hypothesisGrams.count)
    }

    /// The score from sufficient statistics. With `effectiveOrder`, the mean runs only over the orders
    /// the hypotheses have n-grams of.
    init(
        matches: [Int], totals: [Int], hypothesisLength: Int, referenceLength: Int,
        smoothing: Smoothing, effectiveOrder: Bool
    ) {
        self.matches = matches
        self.totals = totals
        self.hypothesisLength = hypothesisLength
        self.referenceLength = referenceLength
        brevityPenalty =
            hypothesisLength >= referenceLength
            ? 1
            : hypothesisLength == 0 ? 0 : exp(1 - Double(referenceLength) / Double(hypothesisLength))
        precisions = [Double](repeating: 0, count: matches.count)
        score = 0
        guard matches.contains(where: { $0 > 0 }) else { return }

        var orders = matches.count, zeros = 0.0
        for i in matches.indices {
            var hits = Double(matches[i]), count = Double(totals[i])
            if case .addK(let k) = smoothing, i > 0 { hits += k; count += k }
            if count == 0 { break }
            if effectiveOrder { orders = i + 1 }
            if hits > 0 {
                precisions[i] = 100 * hits / count
            } else if smoothing == .exponential {
                zeros += 1
                precisions[i] = 100 / (pow(2, zeros) * count)
            } else if case .floor(let epsilon) = smoothing {
                precisions[i] = 100 * epsilon / count
            }
        }
        // A zero precision left unsmoothed makes the score 0 (sacrebleu takes its log as -9999999999).
        let logMean = precisions[..<orders].reduce(0) { $0 + ($1 > 0 ? log($1) : -9_999_999_999) } / Double(orders)
        score = brevityPenalty * exp(logMean)
    }
}
