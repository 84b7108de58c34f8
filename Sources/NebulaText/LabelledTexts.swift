import Foundation

/// One text and its label.
public struct LabelledText: Equatable, Sendable {
    public var text: String
    public var label: String
    public init(text: String, label: String) { (self.text, self.label) = (text, label) }
}

/// Labelled texts from a tab-separated file: one `text<TAB>label` per line (blank lines skipped, `\r\n` read as a
/// line end). A text cannot hold a tab or a line break; a label is everything after the tab, trimmed.
///
/// ```swift
/// let examples = try LabelledTexts.read(URL(fileURLWithPath: "labels.tsv"))
/// Set(examples.map(\.label))   // ["dialogue", "narration"]
/// ```
public enum LabelledTexts {
    /// Reads `url`; errors name the file, and the line or byte offset.
    public static func read(_ url: URL) throws -> [LabelledText] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CorpusError.unreadable(path: url.path, reason: "cannot open the file")
        }
        return try parse(data, source: url.path)
    }

    /// Parses the bytes of a labels file; `source` names it in errors.
    public static func parse(_ data: Data, source: String) throws -> [LabelledText] {
        let text = try Corpus.decodeUTF8(data, source: source)
        var examples: [LabelledText] = []
        // "\r\n" is one Character in Swift, and a newline.
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            func fail(_ problem: String) -> CorpusError { .invalidLine(path: source, line: index + 1, reason: problem) }
            guard fields.count == 2 else {
                throw fail("expected text<TAB>label, found \(fields.count - 1) tabs")
            }
            let passage = fields[0].trimmingCharacters(in: .whitespaces)
            let label = fields[1].trimmingCharacters(in: .whitespaces)
            guard !passage.isEmpty else { throw fail("the text is empty") }
            guard !label.isEmpty else { throw fail("the label is empty") }
            examples.append(LabelledText(text: passage, label: label))
        }
        guard !examples.isEmpty else { throw CorpusError.empty(path: source) }
        return examples
    }
}
