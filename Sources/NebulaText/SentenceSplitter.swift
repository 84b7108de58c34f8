/// Cuts text into sentences: after `.`, `!` or `?` (and any closing quotes or brackets) where white
/// space follows, and at every line break. The white space goes with the next sentence, so the
/// sentences joined give the text back and, for GPT-2's pre-tokenizer, encoding each sentence gives
/// the same ids as encoding the whole text (a piece never spans a non-space/space boundary).
///
/// ```swift
/// SentenceSplitter.sentences(in: "Hi. Bye!\nOk") // ["Hi.", " Bye!", "\nOk"]
/// ```
public enum SentenceSplitter {
    public static func sentences(in text: String) -> [Substring] {
        let scalars = text.unicodeScalars
        var result: [Substring] = []
        var start = scalars.startIndex
        var index = scalars.startIndex
        var afterTerminal = false  // the non-space run before `index` ends with . ! ? (and closers)
        while index < scalars.endIndex {
            let scalar = scalars[index]
            if scalar.properties.isWhitespace {
                // A non-space/space boundary: cut when a sentence ended or the white space breaks a line.
                var end = index
                var breaksLine = false
                while end < scalars.endIndex && scalars[end].properties.isWhitespace {
                    if scalars[end] == "\n" { breaksLine = true }
                    end = scalars.index(after: end)
                }
                if (afterTerminal || breaksLine) && start < index {
                    result.append(Substring(scalars[start..<index]))
                    start = index
                }
                afterTerminal = false
                index = end
                continue
            }
            if ".!?".unicodeScalars.contains(scalar) {
                afterTerminal = true
            } else if !(afterTerminal && closers.contains(scalar)) {
                afterTerminal = false
            }
            index = scalars.index(after: index)
        }
        if start < scalars.endIndex { result.append(Substring(scalars[start..<scalars.endIndex])) }
        return result
    }

    /// The text without its last sentence when that one is unfinished (no `.`, `!` or `?` at its end, closers
    /// aside): what is left of a passage cut at a length limit. Unchanged when no sentence is finished.
    ///
    /// ```swift
    /// SentenceSplitter.completeSentences(in: "Hi. Bye! The cat sat on") // "Hi. Bye!"
    /// ```
    public static func completeSentences(in text: String) -> String {
        let pieces = sentences(in: text)
        guard let last = pieces.lastIndex(where: { $0.contains { !$0.isWhitespace } }), last > 0 else { return text }
        let final = pieces[last].unicodeScalars.reversed().first { !$0.properties.isWhitespace && !closers.contains($0) }
        if let final, ".!?".unicodeScalars.contains(final) { return text }
        return pieces[..<last].joined()
    }

    /// Closing quotes and brackets that may follow a sentence's final punctuation.
    private static let closers: Set<Unicode.Scalar> = ["\"", "'", ")", "]", "\u{201D}", "\u{2019}", "\u{BB}"]
}
