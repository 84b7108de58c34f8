import Foundation

/// Small helpers for the JSON files Nebula writes and reads by hand (key order matters to people
/// reading `vocab.json`; `JSONSerialization` cannot keep it).
enum JSONText {
    /// `string` as a JSON string literal, quotes included.
    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

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
