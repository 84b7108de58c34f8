import Foundation

extension Words {
    /// Words as sacrebleu's default `13a` tokenizer (mteval-v13a, used by WMT) splits them: punctuation
    /// and symbols become words of their own, except `.` and `,` between digits and `-` not after a
    /// digit; `&quot; &amp; &lt; &gt;` are unescaped first.
    ///
    /// ```swift
    /// Words.split13a("Lily said, \"Hi!\" at 3.5-4pm.")
    /// // ["Lily", "said", ",", "\"", "Hi", "!", "\"", "at", "3.5", "-", "4pm", "."]
    /// ```
    public static func split13a(_ text: String, lowercased: Bool = false) -> [Substring] {
        var line = lowercased ? text.lowercased() : text
        while let last = line.last, last.isWhitespace { line.removeLast() }
        line = line.replacingOccurrences(of: "<skipped>", with: "")
            .replacingOccurrences(of: "-\n", with: "")
            .replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&amp;", with: "&")
            .replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">")
        line = " \(line) "
        for (pattern, template) in rules13a {
            line = pattern.stringByReplacingMatches(
                in: line, range: NSRange(line.startIndex..., in: line), withTemplate: template)
        }
        return split(line)
    }
}

/// mteval-v13a's rules, applied in order.
private let rules13a: [(NSRegularExpression, String)] = [
    (#"([\{-\~\[-\` -\&\(-\+\:-\@\/])"#, " $1 "),  // symbols and most punctuation
    (#"([^0-9])([\.,])"#, "$1 $2 "),  // . and , unless after a digit
    (#"([\.,])([^0-9])"#, " $1 $2"),  // . and , unless before a digit
    (#"([0-9])(-)"#, "$1 $2 ")  // - after a digit
].map { (try! NSRegularExpression(pattern: $0.0), $0.1) }
