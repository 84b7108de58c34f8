import Foundation
import NebulaCore

/// BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json` (a `WordPiece` model with a
/// `BertNormalizer`, a `BertPreTokenizer` and a `[CLS] A [SEP]` post-processor), encoding exactly as the
/// `tokenizers` library does:
///
/// 1. normalise: drop NUL, U+FFFD and other control characters, turn white space into spaces, put spaces
///    around CJK ideographs, strip accents (NFD, then no non-spacing marks) and lower-case;
/// 2. split on white space, and every punctuation character on its own;
/// 3. each word greedily into the longest pieces in the vocabulary (`##` marks a continuation); a word
///    with no such split, or longer than `max_input_chars_per_word`, is `[UNK]`;
/// 4. truncate to `maxLength` ids with the specials and wrap in `[CLS]` … `[SEP]`.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(huggingFaceFile: judge.appendingPathComponent("tokenizer.json"))
/// tokenizer.encode("Hello, world!")        // [101, 7592, 1010, 2088, 999, 102]
/// ```
public struct WordPieceTokenizer: Sendable {
    /// Piece → id.
    public let vocabulary: [String: Int]
    public let unknownID: Int
    public let classifierID: Int
    public let separatorID: Int
    /// Most ids `encode` returns, `[CLS]` and `[SEP]` included (the file's truncation, else 512).
    public let maxLength: Int
    let continuationPrefix: String
    let maxCharactersPerWord: Int
    let lowercases: Bool
    let stripsAccents: Bool
    let padsChineseCharacters: Bool
    let cleansText: Bool

    /// Reads `tokenizer.json`; throws ``TokenizerError/invalidFile(path:reason:)`` naming what does not fit.
    public init(huggingFaceFile url: URL) throws {
        let path = url.path
        func invalid(_ reason: String) -> TokenizerError { .invalidFile(path: path, reason: reason) }
        let (root, model) = try JSONText.tokenizerFile(at: url)
        guard let type = model["type"] as? String, type == "WordPiece" else {
            throw invalid("model type \(model["type"] as? String ?? "null") is not WordPiece")
        }
        guard let entries = model["vocab"] as? [String: Any], !entries.isEmpty else { throw invalid("model.vocab is missing or empty") }
        var vocabulary: [String: Int] = [:]
        for (piece, value) in entries {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < 10_000_000 else {
                throw invalid("model.vocab[\(jsonQuoted(piece))] is not a token id")
            }
            vocabulary[piece] = id
        }
        func id(of token: String) throws -> Int {
            guard let id = vocabulary[token] else { throw invalid("the vocabulary has no \(token) token") }
            return id
        }
        let unknown = model["unk_token"] as? String ?? "[UNK]"
        self.vocabulary = vocabulary
        unknownID = try id(of: unknown)
        classifierID = try id(of: "[CLS]")
        separatorID = try id(of: "[SEP]")
        continuationPrefix = model["continuing_subword_prefix"] as? String ?? "##"
        maxCharactersPerWord = (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100

        let normalizer = root["normalizer"] as? [String: Any]
        if let normalizer, normalizer["type"] as? String != "BertNormalizer" {
            throw invalid("normalizer \(normalizer["type"] as? String ?? "null") is not supported (only BertNormalizer)")
        }
        lowercases = normalizer?["lowercase"] as? Bool ?? true
        stripsAccents = normalizer?["strip_accents"] as? Bool ?? lowercases
        padsChineseCharacters = normalizer?["handle_chinese_chars"] as? Bool ?? true
        cleansText = normalizer?["clean_text"] as? Bool ?? true
        if let pre = root["pre_tokenizer"] as? [String: Any], pre["type"] as? String != "BertPreTokenizer" {
            throw invalid("pre_tokenizer \(pre["type"] as? String ?? "null") is not supported (only BertPreTokenizer)")
        }
        let truncation = (root["truncation"] as? [String: Any])?["max_length"] as? NSNumber
        maxLength = truncation?.intValue ?? 512
        guard maxLength >= 2 else { throw invalid("truncation.max_length \(maxLength) leaves no room for [CLS] and [SEP]") }
    }

    /// `[CLS]`, the pieces of `text` (truncated so that the whole fits in `limit`, by default ``maxLength``), `[SEP]`.
    public func encode(_ text: String, limit: Int? = nil) -> [Int] {
        [classifierID] + pieces(of: text).prefix(max(0, min(limit ?? maxLength, maxLength) - 2)) + [separatorID]
    }

    /// The piece ids of `text`, without specials or truncation.
    public func pieces(of text: String) -> [Int] {
        words(in: normalized(text)).flatMap(wordPieces)
    }

    /// BertNormalizer: clean text, pad CJK ideographs, strip accents, lower-case.
    func normalized(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if cleansText {
                if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
                if Self.isWhitespace(scalar) { scalars.append(" "); continue }
            }
            if padsChineseCharacters && Self.isChineseCharacter(scalar) {
                scalars.append(" "); scalars.append(scalar); scalars.append(" ")
            } else {
                scalars.append(scalar)
            }
        }
        var result = String(scalars)
        if stripsAccents {
            result = String(
                String.UnicodeScalarView(
                    result.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                        $0.properties.generalCategory != .nonspacingMark
                    }))
        }
        return lowercases ? result.lowercased() : result
    }

    /// BertPreTokenizer: white space separates words and is dropped; each punctuation character is a word.
    func words(in text: String) -> [Substring.UnicodeScalarView] {
        var words: [Substring.UnicodeScalarView] = []
        let scalars = Substring(text).unicodeScalars
        var start = scalars.startIndex
        var index = start
        while index < scalars.endIndex {
            let scalar = scalars[index]
            let next = scalars.index(after: index)
            if scalar.properties.isWhitespace || Self.isPunctuation(scalar) {
                if start < index { words.append(scalars[start..<index]) }
                if !scalar.properties.isWhitespace { words.append(scalars[index..<next]) }
                start = next
            }
            index = next
        }
        if start < scalars.endIndex { words.append(scalars[start...]) }
        return words
    }

    /// Greedy longest-match-first pieces of one word; `[UNK]` when some part matches nothing.
    func wordPieces(_ word: Substring.UnicodeScalarView) -> [Int] {
        let characters = Array(word)
        if characters.count > maxCharactersPerWord { return [unknownID] }
        var ids: [Int] = []
        var start = 0
        while start < characters.count {
            var end = characters.count
            var found: Int?
            while start < end {
                var piece = String(String.UnicodeScalarView(characters[start..<end]))
                if start > 0 { piece = continuationPrefix + piece }
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let found else { return [unknownID] }
            ids.append(found)
            start = end
        }
        return ids
    }

    /// Control characters as `tokenizers` counts them: the "other" categories, but tab, newline and return.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    /// ASCII punctuation (symbols such as `$`, `+`, `^` included) and every Unicode punctuation category.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The CJK ideograph blocks BERT pads with spaces.
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }
}
