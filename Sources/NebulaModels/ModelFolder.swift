import Foundation
import NebulaNN
import NebulaTensor

/// A problem with a model folder, in one line naming the file.
public struct ModelFolderError: Error, LocalizedError, Sendable {
    public let file: String
    public let problem: String
    public init(_ file: URL, _ problem: String) {
        self.file = file.path
        self.problem = problem
    }
    public var errorDescription: String? { "\(file): \(problem)" }
}

/// The file names of a model folder (readable by Python tools too: JSON config, safetensors weights).
public enum ModelFolder {
    public static let config = "config.json"

    /// The folder a config names by `path` (relative to `folder`, as the training commands write it, or absolute).
    /// `folder` counts as a directory even when its URL lacks the trailing slash.
    public static func resolve(_ path: String, from folder: URL) -> URL {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: folder.path, isDirectory: true)).standardizedFileURL
    }
    public static let weights = "model.safetensors"
    public static let trainingState = "training_state.safetensors"
    public static let log = "log.jsonl"
    public static let plot = "loss.svg"

    /// Decodes `config.json` of a folder, with a one-line error for a missing or malformed file.
    public static func readConfig<C: Decodable>(_ type: C.Type, in directory: URL) throws -> C {
        let url = directory.appendingPathComponent(config)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFolderError(url, "missing (is \(directory.path) a model folder?)")
        }
        do {
            return try JSONDecoder().decode(C.self, from: Data(contentsOf: url))
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelFolderError(url, "expected the key \"\(key.stringValue)\", found none")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ModelFolderError(
                url, "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        } catch {
            throw ModelFolderError(url, "not a valid JSON config (\(error.localizedDescription))")
        }
    }

    /// Writes `config.json` atomically, keys sorted, pretty-printed.
    public static func writeConfig<C: Encodable>(_ value: C, in directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try DurableFile.write(encoder.encode(value), to: directory.appendingPathComponent(config))
    }

    /// Writes `config.json` and the module's weights as `model.safetensors` into `directory` (created if
    /// needed), each atomically.
    public static func write<C: Encodable>(config value: C, weights module: Module, to directory: URL, dtype: SafeTensorsDType = .f32)
        throws
    {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeConfig(value, in: directory)
        try module.save(safetensors: directory.appendingPathComponent(weights), dtype: dtype, metadata: ["format": "pt"])
    }

    /// Refuses a config that needs far more weights than its folder's files hold, before anything is built: a
    /// hostile or mistaken `config.json` (n_embd = 10⁹) must give an error, not a terabyte allocation.
    /// `needed` is the config's weight count, or a lower bound of it; `files` are the weight files, whose
    /// tensor counts come from their headers alone. Up to twice the stored count (plus 1M) is let through, so
    /// near misses get the loader's precise error (which tensor has which shape) for an allocation of that size.
    public static func checkSize(of config: URL, needs needed: Double, files: [SafeTensorsFile]) throws {
        let stored = files.reduce(0.0) { total, file in total + file.tensors.reduce(0.0) { $0 + $1.shape.reduce(1.0) { $0 * Double($1) } } }
        guard needed <= 2 * stored + 1_000_000 else {
            throw ModelFolderError(
                config, "its sizes need at least \(needed.formatted()) weights, but the weight files hold \(stored.formatted())")
        }
    }

    /// Loads a module's weights from the folder's `model.safetensors`, naming the file on failure.
    public static func loadWeights(_ module: Module, from directory: URL, prefix: String = "") throws {
        let url = directory.appendingPathComponent(weights)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelFolderError(url, "missing") }
        try module.load(safetensors: url, prefix: prefix)
    }
}

extension GPT {
    /// Loads a GPT from a model folder (`config.json` + `model.safetensors`), Nebula's or a Hugging Face
    /// GPT-2 folder (``HuggingFaceGPT2``).
    public static func load(from directory: URL) throws -> GPT {
        if HuggingFaceGPT2.isFolder(directory) { return try HuggingFaceGPT2.load(from: directory) }
        let config = try ModelFolder.readConfig(GPTConfig.self, in: directory)
        let url = directory.appendingPathComponent(ModelFolder.config)
        guard config.vocabSize > 0, config.contextLength > 0, config.layers > 0, config.heads > 0,
            config.width > 0, config.width % config.heads == 0
        else {
            throw ModelFolderError(url, "invalid sizes \(config): all must be positive and n_embd divisible by n_head")
        }
        try ModelFolder.checkSize(
            of: url, needs: config.weightCount,
            files: [SafeTensorsFile(contentsOf: directory.appendingPathComponent(ModelFolder.weights))])
        var rng = SeededGenerator.forLoading
        let gpt = GPT(config, generator: &rng)
        try ModelFolder.loadWeights(gpt, from: directory)
        return gpt
    }

    /// Writes `config.json` and `model.safetensors` into `directory` (created if needed), atomically.
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32) throws {
        try ModelFolder.write(config: config, weights: self, to: directory, dtype: dtype)
    }
}
