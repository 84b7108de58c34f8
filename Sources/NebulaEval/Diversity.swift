/// How varied a set of generated texts is, on whitespace words (``Words``):
/// - distinct-n: unique n-grams / all n-grams;
/// - the diversity score ∏_{n=2..4} (unique n-grams / all n-grams) of LD4LG (Lovelace et al. 2023) and
///   contrastive decoding (Su et al. 2022; = ∏ (1 − rep-n));
/// - the share of unique openings (first five words).
///
/// LD4LG counts unique n-grams over the whole set (`.acrossTexts`: repeating another sample counts as
/// repetition); SimCTG / Su et al. count them within each text and sum (`.withinEachText`: only
/// repetition inside a sample counts).
///
/// ```swift
/// let texts = ["the cat sat on the mat", "the cat sat on the rug"]
/// Diversity.distinct(2, in: texts)            // 6 unique of 10 bigrams = 0.6
/// Diversity.score(of: texts)                  // 0.6 · (5/8) · (4/6) = 0.25
/// Diversity.uniqueOpenings(of: texts)         // both open "the cat sat on the": 1/2
/// ```
public enum Diversity {
    public enum Scope: Sendable {
        /// One set of n-grams for all texts (LD4LG).
        case acrossTexts
        /// Unique n-grams counted per text, then summed (SimCTG, contrastive decoding).
        case withinEachText
    }

    /// Unique n-grams over all n-grams of the texts, 0–1 (0 when the texts have no n-grams).
    public static func distinct(_ n: Int, in texts: [String], scope: Scope = .acrossTexts) -> Double {
        let (unique, total) = nGramCounts(n, in: texts.map { Words.split($0) }, scope: scope)
        return total == 0 ? 0 : Double(unique) / Double(total)
    }

    /// ∏ over n = 2, 3, 4 of distinct-n, 0–1.
    public static func score(of texts: [String], scope: Scope = .acrossTexts) -> Double {
        let words = texts.map { Words.split($0) }
        return (2...4).reduce(1.0) { product, n in
            let (unique, total) = nGramCounts(n, in: words, scope: scope)
            return product * (total == 0 ? 0 : Double(unique) / Double(total))
        }
    }

    /// Distinct openings over texts, 0–1: a text's opening is its first `words` words (all of them if
    /// it has fewer).
    public static func uniqueOpenings(of texts: [String], words: Int = 5) -> Double {
        guard !texts.isEmpty else { return 0 }
        let openings = Set(texts.map { Words.split($0).prefix(words) })
        return Double(openings.count) / Double(texts.count)
    }

    static func nGramCounts(_ n: Int, in texts: [[Substring]], scope: Scope) -> (unique: Int, total: Int) {
        var total = 0, unique = 0
        var seen = Set<ArraySlice<Substring>>()
        for words in texts {
            let grams = words.nGrams(n)
            total += grams.count
            if scope == .withinEachText { unique += Set(grams).count } else { seen.formUnion(grams) }
        }
        return (scope == .acrossTexts ? seen.count : unique, total)
    }
}
