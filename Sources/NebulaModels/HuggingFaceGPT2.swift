import Foundation
import NebulaNN
import NebulaTensor

/// GPT-2 folders as Hugging Face `transformers` writes them (`GPT2LMHeadModel.save_pretrained`), read as
/// Nebula GPTs: `config.json` with `model_type: "gpt2"`, weights in `model.safetensors` or in shards listed
/// by `model.safetensors.index.json`, names with or without the `transformer.` prefix, Conv1D weights stored
/// `[in, out]` (transposed here), the output head tied to the token embedding. `GPT.load(from:)` detects
/// such a folder by its config's `model_type`, so every command that takes an LM folder reads them.
///
/// ```swift
/// let gpt = try GPT.load(from: URL(fileURLWithPath: "gpt2"))   // a save_pretrained folder, or a Nebula one
/// ```
public enum HuggingFaceGPT2 {
    /// The keys of a Hugging Face `config.json` that Nebula reads.
    struct Config: Decodable {
        var modelType: String
        var layers: Int
        var heads: Int
        var width: Int
        var positions: Int
        var vocabSize: Int
        var layerNormEpsilon: Double?
        var activation: String?
        var inner: Int?

        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", layers = "n_layer", heads = "n_head", width = "n_embd", positions = "n_positions"
            case vocabSize = "vocab_size", layerNormEpsilon = "layer_norm_epsilon", activation = "activation_function", inner = "n_inner"
        }
    }

    /// The tanh approximation of GELU under each of its `transformers` names (Nebula's GELU).
    static let activations: Set<String> = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"]

    /// Whether `directory` holds a Hugging Face model: its `config.json` names a `model_type`.
    public static func isFolder(_ directory: URL) -> Bool {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(ModelFolder.config).path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return object["model_type"] != nil
    }

    /// The Nebula shape of a Hugging Face GPT-2 config; throws naming the key that does not fit.
    static func config(in directory: URL) throws -> GPTConfig {
        let url = directory.appendingPathComponent(ModelFolder.config)
        let config: Config
        do {
            config = try JSONDecoder().decode(Config.self, from: try Data(contentsOf: url))
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelFolderError(
                url, "no \"\(key.stringValue)\" key (a GPT-2 config has n_layer, n_head, n_embd, n_positions, vocab_size)")
        } catch {
            throw ModelFolderError(url, "not a readable GPT-2 config: \(error.localizedDescription)")
        }
        guard config.modelType == "gpt2" else {
            throw ModelFolderError(url, "model_type \"\(config.modelType)\" is not supported (Nebula reads \"gpt2\")")
        }
        if let activation = config.activation, !activations.contains(activation) {
            throw ModelFolderError(
                url,
                "activation_function \"\(activation)\" is not supported (Nebula's GELU is the tanh form: \(activations.sorted().joined(separator: ", ")))"
            )
        }
        if let epsilon = config.layerNormEpsilon, abs(epsilon - 1e-5) > 1e-12 {
            throw ModelFolderError(url, "layer_norm_epsilon \(epsilon) is not supported (Nebula's layer norm uses 1e-5)")
        }
        if let inner = config.inner, inner != 4 * config.width {
            throw ModelFolderError(url, "n_inner \(inner) is not supported (Nebula's MLP is 4 × n_embd = \(4 * config.width))")
        }
        guard config.layers > 0, config.heads > 0, config.width > 0, config.positions > 0, config.vocabSize > 0,
            config.width % config.heads == 0
        else {
            throw ModelFolderError(
                url, "invalid sizes: n_layer, n_head, n_embd, n_positions, vocab_size must be positive and n_embd divisible by n_head")
        }
        return GPTConfig(
            vocabSize: config.vocabSize, contextLength: config.positions, layers: config.layers,
            heads: config.heads, width: config.width)
    }

    /// The safetensors files of a folder: `model.safetensors`, or the shards its index lists. A folder with only
    /// `pytorch_model.bin` is refused: unpickling can run arbitrary code.
    public static func weightFiles(in directory: URL) throws -> [URL] {
        let single = directory.appendingPathComponent(ModelFolder.weights)
        if FileManager.default.fileExists(atPath: single.path) { return [single] }
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: index.path) {
            struct Index: Decodable { var weight_map: [String: String] }
            let map: Index
            do { map = try JSONDecoder().decode(Index.self, from: try Data(contentsOf: index)) } catch {
                throw ModelFolderError(
                    index, "not a readable shard index (expected {\"weight_map\": {tensor: file}}): \(error.localizedDescription)")
            }
            let files = Set(map.weight_map.values).sorted()
            if let bad = files.first(where: { $0.contains("/") || $0.hasPrefix(".") }) {
                throw ModelFolderError(index, "shard \"\(bad)\" is outside the folder")
            }
            return files.map { directory.appendingPathComponent($0) }
        }
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("pytorch_model.bin").path) {
            throw ModelFolderError(
                directory.appendingPathComponent("pytorch_model.bin"),
                "a pickle, which can run code when loaded, so Nebula does not read it; convert it once with python3 -c \"from transformers import GPT2LMHeadModel as M; M.from_pretrained('DIR').save_pretrained('DIR')\" (writes model.safetensors)"
            )
        }
        throw ModelFolderError(single, "missing (and no model.safetensors.index.json)")
    }

    /// Where a Nebula parameter lives in a Hugging Face GPT-2 checkpoint, and whether it is a Conv1D weight
    /// stored `[in, out]`.
    static func source(of name: String) -> (name: String, transposed: Bool)? {
        let parts = name.split(separator: ".").map(String.init)
        switch parts.first {
        case "wte", "wpe": return (name, false)
        case "lnf": return ("ln_f." + parts[1], false)
        case "blocks":
            guard parts.count >= 4 else { return nil }
            let block = "h.\(parts[1])."
            let leaf = parts.last!
            switch parts[2...].dropLast().joined(separator: ".") {
            case "ln1": return (block + "ln_1." + leaf, false)
            case "ln2": return (block + "ln_2." + leaf, false)
            case "attn.qkv": return (block + "attn.c_attn." + leaf, leaf == "weight")
            case "attn.proj": return (block + "attn.c_proj." + leaf, leaf == "weight")
            case "mlp.fc": return (block + "mlp.c_fc." + leaf, leaf == "weight")
            case "mlp.proj": return (block + "mlp.c_proj." + leaf, leaf == "weight")
            default: return nil
            }
        default: return nil
        }
    }

    /// Loads a Hugging Face GPT-2 folder as a Nebula GPT. Every tensor must be present with its shape; an
    /// `lm_head.weight`, when stored, must equal the token embedding (Nebula ties them).
    public static func load(from directory: URL) throws -> GPT {
        let config = try config(in: directory)
        var tensors: [String: (file: SafeTensorsFile, name: String)] = [:]
        let files = try weightFiles(in: directory).map { url in
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ModelFolderError(url, "missing (listed in the shard index)")
            }
            return try SafeTensorsFile(contentsOf: url)
        }
        try ModelFolder.checkSize(of: directory.appendingPathComponent(ModelFolder.config), needs: config.weightCount, files: files)
        for file in files {
            for info in file.tensors {
                let bare = info.name.hasPrefix("transformer.") ? String(info.name.dropFirst("transformer.".count)) : info.name
                tensors[bare] = (file, info.name)
            }
        }
        var rng = SeededGenerator.forLoading
        let gpt = GPT(config, generator: &rng)
        var used: Set<String> = []
        for (name, parameter) in gpt.namedParameters() {
            let (sourceName, transposed) = source(of: name)!
            guard let (file, stored) = tensors[sourceName] else {
                throw ModelFolderError(directory, "no tensor \"\(sourceName)\" (or \"transformer.\(sourceName)\") for \(name)")
            }
            let tensor = try file.tensor(stored)
            let expected = transposed ? Array(parameter.shape.reversed()) : parameter.shape
            guard tensor.shape == expected else {
                throw ModelFolderError(URL(fileURLWithPath: file.source), "\(stored) has shape \(tensor.shape), expected \(expected)")
            }
            parameter.assign(transposed ? tensor.transposed().data : tensor.data)
            used.insert(sourceName)
        }
        if let (file, stored) = tensors["lm_head.weight"] {
            guard try file.tensor(stored).data == gpt.wte.weight.data else {
                throw ModelFolderError(
                    URL(fileURLWithPath: file.source), "\(stored) differs from the token embedding; Nebula reads tied GPT-2 heads only")
            }
            used.insert("lm_head.weight")
        }
        // Attention-mask buffers that older versions stored are not weights.
        let unexpected = tensors.keys.filter { !used.contains($0) && !$0.hasSuffix("attn.bias") && !$0.hasSuffix("attn.masked_bias") }
            .sorted()
        guard unexpected.isEmpty else {
            throw ModelFolderError(
                directory,
                "tensors a GPT-2 does not have: \(unexpected.prefix(4).joined(separator: ", "))\(unexpected.count > 4 ? " and \(unexpected.count - 4) more" : "")"
            )
        }
        return gpt
    }

    /// Writes `gpt` as a folder `transformers` opens with `GPT2LMHeadModel.from_pretrained`: `config.json`
    /// (model_type gpt2, the tanh GELU, tied embeddings) and `model.safetensors` with `transformer.`-prefixed
    /// names and Conv1D weights `[in, out]`, no `lm_head.weight` (tied). Both files are written atomically.
    public static func save(_ gpt: GPT, to directory: URL, endOfText: Int?, dtype: SafeTensorsDType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let c = gpt.config
        var config: [String: Any] = [
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": c.layers, "n_head": c.heads, "n_embd": c.width,
            "n_positions": c.contextLength, "n_ctx": c.contextLength, "vocab_size": c.vocabSize, "n_inner": NSNull(),
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "tie_word_embeddings": true,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02
        ]
        if let endOfText { config["bos_token_id"] = endOfText; config["eos_token_id"] = endOfText }
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try DurableFile.write(json, to: directory.appendingPathComponent(ModelFolder.config))
        let entries = withNoGrad {
            gpt.namedParameters().map { name, parameter -> SafeTensorsEntry in
                let (target, transposed) = source(of: name)!
                let tensor = transposed ? parameter.transposed() : parameter
                return SafeTensorsEntry(name: "transformer." + target, shape: tensor.shape, floats: tensor.data, dtype: dtype)
            }
        }
        try writeSafeTensors(entries, metadata: ["format": "pt"], to: directory.appendingPathComponent(ModelFolder.weights))
    }
}
