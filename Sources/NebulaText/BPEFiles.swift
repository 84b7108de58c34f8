import Foundation
import NebulaCore

/// Reading and writing byte-level BPE files: GPT-2's `encoder.json` + `vocab.bpe`, the same pair
/// named `vocab.json` + `merges.txt`, and Hugging Face's `tokenizer.json`.
///
/// In `vocab.json`-style files, a token spelled `<|…|>` (such as `<|endoftext|>`) is a special token.
extension ByteLevelBPE {
    /// Loads a GPT-2-style vocabulary (`encoder.json` or `vocab.json`: token → id) and merge list
    /// (`vocab.bpe` or `merges.txt`: one `left right` pair per line, after a `#version` line).
    ///
    /// ```swift
    /// let gpt2 = try ByteLevelBPE(vocabulary: dir.appendingPathComponent("encoder.json"),
    ///                             merges: dir.appendingPathComponent("vocab.bpe"))
    /// ```
    public init(vocabulary: URL, merges: URL) throws {
        guard let entries = try JSONText.object(at: vocabulary) as? [String: Any] else {
            throw TokenizerError.invalidFile(path: vocabulary.path, reason: "expected a JSON object mapping tokens to ids")
        }
        let (tokens, ids) = try Self.tokens(entries, extra: [], path: vocabulary.path)
        let mergeList = try Self.readMerges(merges, ids: ids)
        let specials = ids.filter { Self.looksSpecial($0.key) }
        try self.init(checking: merges.path) {
            try ByteLevelBPE(tokens: tokens, merges: mergeList, specialTokens: specials)
        }
    }

    /// Loads a Hugging Face `tokenizer.json` with a byte-level BPE model. Its added tokens are the
    /// special tokens.
    public init(huggingFaceFile url: URL) throws {
        let path = url.path
        func invalid(_ reason: String) -> TokenizerError { .invalidFile(path: path, reason: reason) }
        let (root, model) = try JSONText.tokenizerFile(at: url)
        if let type = model["type"] as? String, type != "BPE" {
            throw invalid("model type \(type) is not supported (only BPE)")
        }
        let preTokenizer = root["pre_tokenizer"] as? [String: Any]
        guard let preType = preTokenizer?["type"] as? String, preType == "ByteLevel" else {
            throw invalid("pre_tokenizer \(preTokenizer?["type"] as? String ?? "null") is not supported (only ByteLevel)")
        }
        if preTokenizer?["add_prefix_space"] as? Bool == true {
            throw invalid("pre_tokenizer add_prefix_space = true is not supported")
        }
        guard let vocabulary = model["vocab"] as? [String: Any] else { throw invalid("model.vocab is missing") }
        guard !vocabulary.isEmpty else { throw invalid("model.vocab is empty (a byte-level BPE has a token for each of the 256 bytes)") }
        var added: [(String, Int)] = []
        for token in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = token["content"] as? String, let id = (token["id"] as? NSNumber)?.intValue else {
                throw invalid("an added token lacks content or id")
            }
            added.append((content, id))
        }
        let (tokens, ids) = try Self.tokens(vocabulary, extra: added, path: path)
        var mergeList: [(left: Int, right: Int)] = []
        for (index, merge) in (model["merges"] as? [Any] ?? []).enumerated() {
            let pair: [String]
            if let text = merge as? String {
                pair = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = merge as? [String] ?? []
            }
            guard pair.count == 2, let left = ids[pair[0]], let right = ids[pair[1]] else {
                throw invalid("merge \(index) is not a pair of vocabulary tokens")
            }
            mergeList.append((left, right))
        }
        let specials = Dictionary(added, uniquingKeysWith: { first, _ in first })
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false
        try self.init(checking: path) {
            try ByteLevelBPE(tokens: tokens, merges: mergeList, specialTokens: specials, ignoreMerges: ignoreMerges)
        }
    }

    /// Writes `vocab.json`, `merges.txt` and `tokenizer.json` into `directory` (created if needed),
    /// each atomically.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let specialIDs = Set(specialTokens.values)
        let specialByID = Dictionary(uniqueKeysWithValues: specialTokens.map { ($0.value, $0.key) })
        var vocabLines: [String] = []
        for id in 0..<vocabularySize {
            guard let bytes = bytes(of: id) else { continue }
            let text = specialIDs.contains(id) ? specialByID[id]! : ByteLevelAlphabet.string(of: bytes)
            vocabLines.append("\(jsonQuoted(text)): \(id)")
        }
        let mergeLines = merges.map { merge in
            ByteLevelAlphabet.string(of: bytes(of: merge.left)!) + " " + ByteLevelAlphabet.string(of: bytes(of: merge.right)!)
        }
        let vocabJSON = "{\n  " + vocabLines.joined(separator: ",\n  ") + "\n}\n"
        try write(vocabJSON, to: directory.appendingPathComponent("vocab.json"))
        try write("#version: 0.2\n" + mergeLines.map { $0 + "\n" }.joined(), to: directory.appendingPathComponent("merges.txt"))

        let added = specialTokens.sorted { $0.value < $1.value }.map { token in
            "    {\"id\": \(token.value), \"content\": \(jsonQuoted(token.key)), \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
        }
        let byteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
        let huggingFace = """
            {
              "version": "1.0",
              "truncation": null,
              "padding": null,
              "added_tokens": [
            \(added.joined(separator: ",\n"))
              ],
              "normalizer": null,
              "pre_tokenizer": \(byteLevel),
              "post_processor": \(byteLevel),
              "decoder": \(byteLevel),
              "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": null,
                "continuing_subword_prefix": null,
                "end_of_word_suffix": null,
                "fuse_unk": false,
                "byte_fallback": false,
                "ignore_merges": false,
                "vocab": {
                  \(vocabLines.joined(separator: ",\n      "))
                },
                "merges": [
                  \(mergeLines.map(jsonQuoted).joined(separator: ",\n      "))
                ]
              }
            }

            """
        try write(huggingFace, to: directory.appendingPathComponent("tokenizer.json"))
    }

    // MARK: Helpers

    private init(checking path: String, _ make: () throws -> ByteLevelBPE) throws {
        do { self = try make() } catch TokenizerError.invalidTraining(let reason) {
            throw TokenizerError.invalidFile(path: path, reason: reason)
        }
    }

    private static func looksSpecial(_ token: String) -> Bool {
        token.count > 4 && token.hasPrefix("<|") && token.hasSuffix("|>")
    }

    /// The bytes of each id, and the id of each token string.
    private static func tokens(_ entries: [String: Any], extra: [(String, Int)], path: String) throws
        -> (tokens: [[UInt8]?], ids: [String: Int])
    {
        var ids: [String: Int] = [:]
        var byID: [Int: [UInt8]] = [:]
        for (token, value) in entries {
            guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue), id >= 0 else {
                throw TokenizerError.invalidFile(path: path, reason: "token \(token.debugDescription) has no valid id")
            }
            let bytes = looksSpecial(token) ? Array(token.utf8) : ByteLevelAlphabet.bytes(of: token)
            guard let bytes else {
                throw TokenizerError.invalidFile(
                    path: path, reason: "token \(token.debugDescription) has a character outside GPT-2's byte alphabet")
            }
            if byID[id] != nil {
                throw TokenizerError.invalidFile(path: path, reason: "id \(id) is given to two tokens")
            }
            ids[token] = id
            byID[id] = bytes
        }
        for (token, id) in extra {
            guard id >= 0 else { throw TokenizerError.invalidFile(path: path, reason: "added token \(token) has id \(id)") }
            byID[id] = Array(token.utf8)
        }
        guard let maxID = byID.keys.max() else {
            throw TokenizerError.invalidFile(path: path, reason: "the vocabulary is empty")
        }
        // Ids index a dense table: one far past the number of tokens would allocate gigabytes (found by `make fuzz`).
        guard maxID < 2 * byID.count + 1024 else {
            throw TokenizerError.invalidFile(
                path: path, reason: "id \(maxID) is far beyond the vocabulary's \(byID.count) tokens (ids must be about 0..<\(byID.count))")
        }
        var tokens = [[UInt8]?](repeating: nil, count: maxID + 1)
        for (id, bytes) in byID { tokens[id] = bytes }
        return (tokens, ids)
    }

    private static func readMerges(_ url: URL, ids: [String: Int]) throws -> [(left: Int, right: Int)] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.invalidFile(path: url.path, reason: "not valid UTF-8")
        }
        var merges: [(left: Int, right: Int)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || (index == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError.invalidFile(path: url.path, reason: "line \(index + 1): expected two tokens separated by a space")
            }
            guard let left = ids[String(parts[0])], let right = ids[String(parts[1])] else {
                throw TokenizerError.invalidFile(path: url.path, reason: "line \(index + 1): token not in the vocabulary")
            }
            merges.append((left, right))
        }
        return merges
    }

    private func write(_ text: String, to url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
