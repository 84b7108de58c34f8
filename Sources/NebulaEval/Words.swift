/// The word tokenization every text metric here uses: split on whitespace (as Python's `str.split()`),
/// optionally lowercased first. Texts that went through Nebula's tokenizer and back are compared as
/// their words, with punctuation wherever the text has it.
///
/// ```swift
/// Words.split("The cat  sat.")                    // ["The", "cat", "sat."]
/// Words.split("The cat", lowercased: true)        // ["the", "cat"]
/// ```
public enum Words {
    public static func split(_ text: String, lowercased: Bool = false) -> [Substring] {
        (lowercased ? text.lowercased() : text).split(whereSeparator: \.isWhitespace)
    }
}

extension Array {
    /// The `n`-grams of the sequence in order, as slices (none when it is shorter than `n`).
    func nGrams(_ n: Int) -> [ArraySlice<Element>] {
        guard n > 0, count >= n else { return [] }
        return (0...(count - n)).map { self[$0..<($0 + n)] }
    }
}
