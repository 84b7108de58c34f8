import Foundation
import NebulaNN
import NebulaTensor

/// The shape of a GPT: stored as the model folder's `config.json` (snake_case keys).
public struct GPTConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var contextLength: Int
    public var layers: Int
    public var heads: Int
    public var width: Int

    public init(vocabSize: Int, contextLength: Int, layers: Int, heads: Int, width: Int) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.layers = layers
        self.heads = heads
        self.width = width
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", contextLength = "context_length", layers = "n_layer", heads = "n_head", width = "n_embd"
    }

    /// Named sizes, from a test-sized toy to about 10M parameters (with a 4096-token vocabulary).
    public static func preset(_ name: String, vocabSize: Int, contextLength: Int? = nil) -> GPTConfig? {
        switch name {
        case "tiny": return GPTConfig(vocabSize: vocabSize, contextLength: contextLength ?? 32, layers: 2, heads: 2, width: 32)
        case "mini": return GPTConfig(vocabSize: vocabSize, contextLength: contextLength ?? 64, layers: 4, heads: 4, width: 128)
        case "small": return GPTConfig(vocabSize: vocabSize, contextLength: contextLength ?? 128, layers: 6, heads: 6, width: 192)
        case "base": return GPTConfig(vocabSize: vocabSize, contextLength: contextLength ?? 256, layers: 6, heads: 6, width: 384)
        default: return nil
        }
    }

    public static let presetNames = ["tiny", "mini", "small", "base"]

    /// The number of weights a GPT of this shape has, computed without building it (in floating point, so a
    /// hostile config cannot overflow it): embeddings, 12C² + 13C a block, the final layer norm.
    public var weightCount: Double {
        let (v, t, l, c) = (Double(vocabSize), Double(contextLength), Double(layers), Double(width))
        return (v + t) * c + l * (12 * c * c + 13 * c) + 2 * c
    }
}

/// A GPT-2-style decoder-only transformer: token + learned position embeddings, pre-LayerNorm blocks with
/// causal self-attention and a GELU MLP, a final LayerNorm, and an output head tied to the token embedding.
///
/// ```swift
/// var rng = SeededGenerator(seed: 0)
/// let gpt = GPT(GPTConfig.preset("tiny", vocabSize: 64)!, generator: &rng)
/// let logits = gpt(ids, batch: 2, length: 16)            // [2, 16, 64]
/// let loss = crossEntropy(logits, targets: targets)
/// ```
public final class GPT: Module {
    public let config: GPTConfig
    public let wte: Embedding
    public let wpe: Embedding
    public let blocks: [TransformerBlock]
    public let lnf: LayerNorm

    /// Random initialisation as GPT-2: N(0, 0.02), residual projections N(0, 0.02/√(2·layers)).
    public init(_ config: GPTConfig, generator: inout SeededGenerator) {
        self.config = config
        wte = Embedding(config.vocabSize, config.width, generator: &generator)
        wpe = Embedding(config.contextLength, config.width, generator: &generator)
        let projectionStd = 0.02 / Float(2 * config.layers).squareRoot()
        blocks = (0..<config.layers).map { _ in
            TransformerBlock(config.width, heads: config.heads, causal: true, projectionStd: projectionStd, generator: &generator)
        }
        lnf = LayerNorm(config.width)
    }

    /// The final hidden states `[B, T, C]` (after `lnf`) and, when `collectLayers` is set, the residual
    /// stream after each block (`layers` tensors `[B, T, C]`).
    /// With a cache, `ids` are the new positions only and continue after the cached ones. `inputOffset`
    /// (`[B, T, C]`) is added to the token and position embeddings, and `afterBlock(i, x)` may rewrite the
    /// residual stream after block i: the routes by which the latent autoencoder's decoder reads its latent.
    public func hiddenStates(
        _ ids: [Int32], batch: Int, length: Int, keyMask: [Float]? = nil,
        caches: [KVCache]? = nil, inputOffset: Tensor? = nil,
        afterBlock: ((Int, Tensor) -> Tensor)? = nil,
        collectLayers: Bool = false
    ) -> (final: Tensor, layers: [Tensor]) {
        precondition(ids.count == batch * length, "GPT: \(ids.count) ids for batch \(batch) × length \(length)")
        let start = caches?.first?.count ?? 0
        precondition(
            start + length <= config.contextLength,
            "GPT: positions up to \(start + length) exceed the context length \(config.contextLength)")
        let positions = wpe.weight.slice(axis: 0, start..<(start + length))  // [T, C]
        var x = wte(ids, shape: [batch, length]) + positions  // [B, T, C]
        if let inputOffset { x = x + inputOffset }
        var layers: [Tensor] = []
        for (i, block) in blocks.enumerated() {
            x = block(x, keyMask: keyMask, cache: caches?[i])
            if let afterBlock { x = afterBlock(i, x) }
            if collectLayers { layers.append(x) }
        }
        return (lnf(x), layers)
    }

    /// Next-token logits `[B, T, V]` for `ids` (`[B, T]` flattened row-major).
    public func callAsFunction(
        _ ids: [Int32], batch: Int, length: Int, caches: [KVCache]? = nil, keyMask: [Float]? = nil,
        inputOffset: Tensor? = nil, afterBlock: ((Int, Tensor) -> Tensor)? = nil
    ) -> Tensor {
        logits(
            hiddenStates(
                ids, batch: batch, length: length, keyMask: keyMask, caches: caches, inputOffset: inputOffset,
                afterBlock: afterBlock
            ).final)
    }

    /// The tied output head: `h · wteᵀ`, `[B, T, C]` → `[B, T, V]`.
    public func logits(_ hidden: Tensor) -> Tensor { linear(hidden, weight: wte.weight) }

    /// Mean next-token cross-entropy of `targets` (-1 = ignored) given `ids`.
    public func loss(_ ids: [Int32], targets: [Int32], batch: Int, length: Int) -> Tensor {
        crossEntropy(self(ids, batch: batch, length: length), targets: targets)
    }

    /// One empty KV cache per block, for incremental decoding.
    public func makeCaches() -> [KVCache] { blocks.map { _ in KVCache() } }
}
