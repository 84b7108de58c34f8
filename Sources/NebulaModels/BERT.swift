import Foundation
import NebulaNN
import NebulaTensor

/// The shape of a BERT encoder, read from a Hugging Face `config.json` (`model_type: "bert"`).
public struct BERTConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int
    public var positions: Int
    public var tokenTypes: Int
    public var layerNormEpsilon: Float

    public init(
        vocabSize: Int, width: Int, layers: Int, heads: Int, mlpWidth: Int, positions: Int, tokenTypes: Int = 2,
        layerNormEpsilon: Float = 1e-12
    ) {
        self.vocabSize = vocabSize
        self.width = width
        self.layers = layers
        self.heads = heads
        self.mlpWidth = mlpWidth
        self.positions = positions
        self.tokenTypes = tokenTypes
        self.layerNormEpsilon = layerNormEpsilon
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", width = "hidden_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case mlpWidth = "intermediate_size", positions = "max_position_embeddings", tokenTypes = "type_vocab_size"
        case layerNormEpsilon = "layer_norm_eps"
    }

    /// Reads a Hugging Face BERT config; throws naming the key that Nebula cannot honour.
    public static func read(_ url: URL) throws -> BERTConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ModelFolderError(url, "cannot read: \(error.localizedDescription)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelFolderError(url, "not a JSON object")
        }
        guard object["model_type"] as? String == "bert" else {
            throw ModelFolderError(url, "model_type \"\(object["model_type"] as? String ?? "null")\" is not bert")
        }
        if let activation = object["hidden_act"] as? String, activation != "gelu" {
            throw ModelFolderError(url, "hidden_act \"\(activation)\" is not supported (Nebula's BERT uses the exact GELU, \"gelu\")")
        }
        if let positions = object["position_embedding_type"] as? String, positions != "absolute" {
            throw ModelFolderError(url, "position_embedding_type \"\(positions)\" is not supported (only absolute)")
        }
        let config: BERTConfig
        do { config = try JSONDecoder().decode(BERTConfig.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw ModelFolderError(url, "no \"\(key.stringValue)\" key")
        } catch {
            throw ModelFolderError(url, "not a readable BERT config: \(error.localizedDescription)")
        }
        guard
            [config.vocabSize, config.width, config.layers, config.heads, config.mlpWidth, config.positions, config.tokenTypes].allSatisfy({
                $0 > 0 && $0 < 1 << 24
            }),
            config.width % config.heads == 0, config.layerNormEpsilon > 0
        else {
            throw ModelFolderError(url, "invalid sizes: every size must be positive and hidden_size divisible by num_attention_heads")
        }
        return config
    }
}

/// One post-LayerNorm encoder layer: `x ← LN(x + attention(x))`, `x ← LN(x + W₂·GELU(W₁·x))`.
public final class BERTLayer: Module {
    public let attention: SelfAttention
    public let attentionNorm: LayerNorm
    public let intermediate: Linear
    public let output: Linear
    public let outputNorm: LayerNorm

    public init(_ config: BERTConfig, generator: inout SeededGenerator) {
        attention = SelfAttention(config.width, heads: config.heads, causal: false, generator: &generator)
        attentionNorm = LayerNorm(config.width, eps: config.layerNormEpsilon)
        intermediate = Linear(config.width, config.mlpWidth, generator: &generator)
        output = Linear(config.mlpWidth, config.width, generator: &generator)
        outputNorm = LayerNorm(config.width, eps: config.layerNormEpsilon)
    }

    /// `x: [B, T, C]` → `[B, T, C]`; `keyMask` `[B, T]` (1 = token, 0 = padding).
    public func callAsFunction(_ x: Tensor, keyMask: [Float]?) -> Tensor {
        let attended = attentionNorm(x + attention(x, keyMask: keyMask))  // [B, T, C]
        return outputNorm(attended + output(intermediate(attended).exactGELU()))  // [B, T, C]
    }
}

/// A BERT encoder (Devlin et al. 2019) as Hugging Face's `BertModel`: word + position + token-type
/// embeddings and a LayerNorm, then post-LayerNorm layers of bidirectional attention and an exact-GELU MLP.
/// Read from a `save_pretrained` folder (`config.json`, `model.safetensors`); the pooler head is not read.
///
/// ```swift
/// let bert = try BERT.load(from: URL(fileURLWithPath: ".build/judge/all-MiniLM-L6-v2"))
/// let states = bert(ids, batch: 2, length: 12, keyMask: mask)      // [2, 12, 384]
/// ```
public final class BERT: Module {
    public let config: BERTConfig
    public let wordEmbeddings: Embedding
    public let positionEmbeddings: Embedding
    public let tokenTypeEmbeddings: Embedding
    public let embeddingNorm: LayerNorm
    public let layers: [BERTLayer]

    public init(_ config: BERTConfig, generator: inout SeededGenerator) {
        self.config = config
        wordEmbeddings = Embedding(config.vocabSize, config.width, generator: &generator)
        positionEmbeddings = Embedding(config.positions, config.width, generator: &generator)
        tokenTypeEmbeddings = Embedding(config.tokenTypes, config.width, generator: &generator)
        embeddingNorm = LayerNorm(config.width, eps: config.layerNormEpsilon)
        layers = (0..<config.layers).map { _ in BERTLayer(config, generator: &generator) }
    }

    /// The last hidden states `[B, T, C]` of `ids` (`[B, T]` row-major, every token of type 0).
    public func callAsFunction(_ ids: [Int32], batch: Int, length: Int, keyMask: [Float]? = nil) -> Tensor {
        precondition(ids.count == batch * length, "BERT: \(ids.count) ids for batch \(batch) × length \(length)")
        precondition(length <= config.positions, "BERT: \(length) positions exceed the model's \(config.positions)")
        let positions = positionEmbeddings.weight.slice(axis: 0, 0..<length)  // [T, C]
        let tokenType = tokenTypeEmbeddings.weight.slice(axis: 0, 0..<1)  // [1, C]
        var x = embeddingNorm(wordEmbeddings(ids, shape: [batch, length]) + positions + tokenType)  // [B, T, C]
        for layer in layers { x = layer(x, keyMask: keyMask) }
        return x
    }

    /// Where each of this module's parameters lives in a Hugging Face BERT checkpoint: one or more tensors
    /// (query, key and value are stored apart and concatenated into the fused projection).
    static func sources(of name: String) -> [String] {
        let parts = name.split(separator: ".").map(String.init)
        let leaf = parts.last!
        switch parts.first {
        case "wordEmbeddings": return ["embeddings.word_embeddings.weight"]
        case "positionEmbeddings": return ["embeddings.position_embeddings.weight"]
        case "tokenTypeEmbeddings": return ["embeddings.token_type_embeddings.weight"]
        case "embeddingNorm": return ["embeddings.LayerNorm.\(leaf)"]
        default:
            let layer = "encoder.layer.\(parts[1])."
            switch parts[2...].dropLast().joined(separator: ".") {
            case "attention.qkv": return ["query", "key", "value"].map { layer + "attention.self.\($0).\(leaf)" }
            case "attention.proj": return [layer + "attention.output.dense.\(leaf)"]
            case "attentionNorm": return [layer + "attention.output.LayerNorm.\(leaf)"]
            case "intermediate": return [layer + "intermediate.dense.\(leaf)"]
            case "output": return [layer + "output.dense.\(leaf)"]
            default: return [layer + "output.LayerNorm.\(leaf)"]  // outputNorm
            }
        }
    }

    /// Loads a `BertModel.save_pretrained` folder (names with or without a `bert.` prefix). Every tensor
    /// must be present with its shape; errors name the file and the tensor.
    public static func load(from directory: URL) throws -> BERT {
        let config = try BERTConfig.read(directory.appendingPathComponent(ModelFolder.config))
        let url = directory.appendingPathComponent(ModelFolder.weights)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelFolderError(url, "missing") }
        let file = try SafeTensorsFile(contentsOf: url)
        let prefix = file.info("bert.embeddings.word_embeddings.weight") != nil ? "bert." : ""
        var rng = SeededGenerator.forLoading
        let bert = BERT(config, generator: &rng)
        for (name, parameter) in bert.namedParameters() {
            let stored = sources(of: name).map { prefix + $0 }
            let expected = [parameter.shape[0] / stored.count] + parameter.shape.dropFirst()  // each part of a fused tensor
            var values: [Float] = []
            for source in stored {
                guard let info = file.info(source) else { throw ModelFolderError(url, "no tensor \"\(source)\" (for \(name))") }
                guard info.shape == expected else { throw ModelFolderError(url, "\(source) has shape \(info.shape), expected \(expected)") }
                values += try file.floats(source)
            }
            parameter.assign(values)
        }
        return bert
    }
}
