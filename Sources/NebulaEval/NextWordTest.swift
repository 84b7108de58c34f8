import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// The seed's test of a language model: give it prompts cut at a word boundary and check whether the
/// very next word it writes (greedy decoding until the word ends) is the one expected.
public struct NextWordTest {
    /// One prompt and the word that follows it in the text.
    public struct Case: Sendable, Equatable {
        public var prompt: String
        public var expected: String
        public init(prompt: String, expected: String) {
            self.prompt = prompt
            self.expected = expected
        }
    }

    /// One scored case.
    public struct Outcome: Sendable {
        public var testCase: Case
        public var predicted: String
        public var correct: Bool { predicted == testCase.expected }
    }

    public var cases: [Case]
    public init(cases: [Case]) { self.cases = cases }

    /// Cuts `count` prompts from `documents` at word boundaries, seeded: each prompt is the text before a
    /// space that is followed by a word of letters (and apostrophes); the expected answer is that word. A
    /// prompt holds at least `minimumWords` words.
    public static func cases(from documents: [String], count: Int, seed: UInt64 = 7, minimumWords: Int = 4) -> [Case] {
        var candidates: [(Int, String.Index)] = []
        for (d, text) in documents.enumerated() {
            var words = 0
            var previous: Character = " "
            for i in text.indices {
                let c = text[i]
                if c.isLetter && !previous.isLetter && previous != "'" { words += 1 }
                if c == " ", words >= minimumWords, previous.isLetter || previous.isPunctuation {
                    let next = text.index(after: i)
                    if next < text.endIndex, text[next].isLetter { candidates.append((d, i)) }
                }
                previous = c
            }
        }
        guard !candidates.isEmpty else { return [] }
        var generator = SeededGenerator(seed: seed)
        var chosen = Set<Int>()
        while chosen.count < min(count, candidates.count) { chosen.insert(generator.nextInt(below: candidates.count)) }
        return chosen.sorted().map { k in
            let (d, i) = candidates[k]
            let text = documents[d]
            let wordStart = text.index(after: i)
            let word = text[wordStart...].prefix { $0.isLetter || $0 == "'" }
            return Case(prompt: String(text[..<i]), expected: String(word))
        }
    }

    /// Reads `prompt<TAB>expected word` lines (blank lines and lines starting with `#` are skipped).
    public static func cases(fromFile url: URL) throws -> [Case] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var result: [Case] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ModelFolderError(
                    url, "line \(n + 1): expected \"prompt<TAB>expected word\", found \(parts.count) tab-separated fields")
            }
            result.append(Case(prompt: String(parts[0]), expected: parts[1].trimmingCharacters(in: .whitespaces)))
        }
        return result
    }

    /// Runs every case: the model continues the prompt greedily until a complete word has appeared.
    public func run(model: GPT, tokenizer: any Tokenizer, maxTokens: Int = 8) throws -> [Outcome] {
        try cases.map { c in
            let prompt = try tokenizer.encode(String(c.prompt.suffix(4 * model.config.contextLength)))
            var generator = SeededGenerator(seed: 0)
            var produced: [Int] = []
            var word = ""
            model.generate(prompt: prompt, maxTokens: maxTokens, options: SamplingOptions(temperature: 0), generator: &generator) { token in
                produced.append(token)
                let text = (try? tokenizer.decode(produced)) ?? ""
                let (w, complete) = NextWordTest.firstWord(text)
                word = w
                return !complete
            }
            return Outcome(testCase: c, predicted: word)
        }
    }

    /// The first word of a continuation (leading spaces skipped) and whether it has ended.
    static func firstWord(_ text: String) -> (String, Bool) {
        let trimmed = text.drop { $0 == " " }
        let word = trimmed.prefix { $0.isLetter || $0 == "'" }
        return (String(word), word.count < trimmed.count || (word.isEmpty && !trimmed.isEmpty))
    }

    /// Share of outcomes whose word matched.
    public static func accuracy(_ outcomes: [Outcome]) -> Double {
        outcomes.isEmpty ? 0 : Double(outcomes.filter(\.correct).count) / Double(outcomes.count)
    }
}
