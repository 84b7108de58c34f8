import ArgumentParser
import Foundation
import NebulaNN

/// `nebula export`: a model folder without its training state, weights in half precision.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a model folder for shipping: configs, tokenizer, logs and plot, weights converted (F16 by default); no optimizer state or caches."
    )
    @Option(help: "The model folder to export.") var from: String
    @Option(help: "The destination folder (created; files in it are replaced).") var to: String
    @Option(help: "Weight dtype: F32, F16 or BF16.") var dtype = "F16"
    @Option(help: "For an autoencoder: the LM folder its exported config should name (e.g. the bundle's lm/).") var languageModel: String?
    @Option(help: "For a denoiser: the autoencoder folder its exported config should name (e.g. the bundle's autoencoder/).") var autoencoder: String?

    static let copied = ["config.json", "data.json", "training.json", "log.jsonl", "loss.svg",
                         "vocab.json", "merges.txt", "tokenizer.json", "char_tokenizer.json"]

    func run() throws {
        try reportingErrors {
            guard let type = SafeTensorsDType(rawValue: dtype.uppercased()), [.f32, .f16, .bf16].contains(type) else {
                throw ValidationError("--dtype must be F32, F16 or BF16, got \(dtype)")
            }
            let (source, destination) = (fileURL(from), fileURL(to))
            let manager = FileManager.default
            try manager.createDirectory(at: destination, withIntermediateDirectories: true)
            for name in Self.copied where manager.fileExists(atPath: source.appendingPathComponent(name).path) {
                let target = destination.appendingPathComponent(name)
                if manager.fileExists(atPath: target.path) { try manager.removeItem(at: target) }
                try manager.copyItem(at: source.appendingPathComponent(name), to: target)
            }
            try relink(config: destination.appendingPathComponent("config.json"), key: "language_model", to: languageModel, from: destination)
            try relink(config: destination.appendingPathComponent("config.json"), key: "autoencoder", to: autoencoder, from: destination)
            let weights = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
            let entries = try weights.tensors.map { SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: try weights.floats($0.name), dtype: type) }
            try writeSafeTensors(entries, metadata: weights.metadata, to: destination.appendingPathComponent("model.safetensors"))
            print("\(source.path) → \(destination.path) (\(entries.count) tensors, \(type.rawValue))")
        }
    }

    /// Points the config's `key` (a folder path relative to the model folder) at `target`.
    func relink(config: URL, key: String, to target: String?, from destination: URL) throws {
        guard let target else { return }
        guard var object = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any], object[key] is String else {
            throw CommandError("\(config.path): no \"\(key)\" entry to point at \(target)")
        }
        guard FileManager.default.fileExists(atPath: fileURL(target).appendingPathComponent("config.json").path) else {
            throw CommandError("\(target): not a model folder (no config.json)")
        }
        object[key] = relativePath(from: destination, to: fileURL(target))
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]).write(to: config, options: .atomic)
    }
}
