import Foundation
import NebulaCore

/// Reading the JSON files of tokenizers, naming the file in every error (NebulaCore's `jsonQuoted` writes their
/// strings: key order matters to people reading `vocab.json`, and `JSONSerialization` cannot keep it).
enum JSONText {
    /// A Hugging Face `tokenizer.json`: its root object and its `model` object, naming the file in any error.
    static func tokenizerFile(at url: URL) throws -> (root: [String: Any], model: [String: Any]) {
        guard let root = try object(at: url) as? [String: Any], let model = root["model"] as? [String: Any] else {
            throw TokenizerError.invalidFile(path: url.path, reason: "expected a JSON object with a \"model\"")
        }
        return (root, model)
    }

    /// Parses the JSON file at `url`, naming the file in any error.
    static func object(at url: URL) throws -> Any {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        do { return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw TokenizerError.invalidFile(path: url.path, reason: "not valid JSON (\(error.localizedDescription))")
        }
    }
}
