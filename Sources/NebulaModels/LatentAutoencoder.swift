import Foundation
import NebulaNN
import NebulaTensor

/// The shape of a latent autoencoder: stored as its folder's `config.json`.
public struct AutoencoderConfig: Codable, Equatable, Sendable {
    /// K: latent vectors per passage.
    public var latents = 16
    /// d: width of each latent vector.
    public var latentWidth = 64
    /// Width of the compression and reconstruction networks.
    public var width = 192
    public var heads = 6
    /// Perceiver layers of the compression network.
    public var compressorLayers = 3
    /// Transformer layers of the reconstruction network.
    public var reconstructionLayers = 2
    /// Longest passage in tokens.
    public var maxLength = 64
    /// Std of the Gaussian noise added to latents in training, so the decoder tolerates imperfect latents.
    public var latentNoise: Float = 0.1
    /// Share of the decoder's input tokens replaced by `<|endoftext|>` in training (word dropout, Bowman
    /// et al. 2016): the frozen LM can no longer lean on the preceding tokens alone, so the latent has to
    /// carry the passage.
    public var inputDropout: Float = 0
    /// Weight of a penalty on the batch mean of the latents (‖mean_b z‖², per element): a constant latent
    /// shared by every passage then costs loss, which counters the collapse seen on TinyStories.
    public var centering: Float = 0
    /// How the latent steers the frozen LM.
    public var conditioning: Conditioning = .prefix
    /// The language-model folder, relative to the autoencoder's folder (or absolute).
    public var languageModel = "../lm"

    /// The routes from the reconstructed latent into the frozen decoder.
    public enum Conditioning: String, Codable, Sendable, CaseIterable {
        /// Per-layer key/value prefixes (prefix-tuning): the default, the route that learns the toy corpus.
        case prefix
        /// Gated cross-attention adapters after every frozen block (Flamingo), gates starting at 0.
        case adapters
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case latents, latentWidth = "latent_width", width, heads, compressorLayers = "compressor_layers"
        case reconstructionLayers = "reconstruction_layers", maxLength = "max_length", latentNoise = "latent_noise"
        case inputDropout = "input_dropout", conditioning, centering
        case languageModel = "language_model"
    }
}

/// Holds a module without making it part of the owner's parameters (reflection skips it): the frozen
/// language model inside the autoencoder.
public struct Frozen<M: Module> {
    public let module: M
    public init(_ module: M) {
        module.freeze()
        module.eval()
        self.module = module
    }
}

/// A Perceiver layer: learned queries read a sequence through cross-attention, then talk among
/// themselves (self-attention) and pass through an MLP, each step pre-LayerNorm and residual.
public final class PerceiverLayer: Module {
    public let lnQuery: LayerNorm
    public let lnContext: LayerNorm
    public let cross: CrossAttention
    public let block: TransformerBlock

    public init(_ width: Int, contextWidth: Int, heads: Int, generator: inout SeededGenerator) {
        lnQuery = LayerNorm(width)
        lnContext = LayerNorm(contextWidth)
        cross = CrossAttention(width, contextDimension: contextWidth, heads: heads, generator: &generator)
        block = TransformerBlock(width, heads: heads, causal: false, generator: &generator)
    }

    /// `queries: [B, K, W]`, `context: [B, L, Cc]`, `contextMask: [B, L]` → `[B, K, W]`.
    public func callAsFunction(_ queries: Tensor, context: Tensor, contextMask: [Float]?) -> Tensor {
        let q = queries + cross(lnQuery(queries), context: lnContext(context), contextMask: contextMask)
        return block(q)
    }
}

/// A gated cross-attention adapter (Flamingo): `x + tanh(gate)·crossAttention(ln(x), context)`, with the
/// gate starting at 0 so the frozen model starts unchanged.
public final class GatedCrossAttention: Module {
    public let norm: LayerNorm
    public let attention: CrossAttention
    public let gate: Tensor

    public init(_ width: Int, contextWidth: Int, heads: Int, generator: inout SeededGenerator) {
        norm = LayerNorm(width)
        attention = CrossAttention(width, contextDimension: contextWidth, heads: heads, generator: &generator)
        gate = Tensor.zeros([1]).requiringGrad()
    }

    /// `x: [B, T, C]`, `context: [B, K, W]` → `[B, T, C]`.
    public func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        x + attention(norm(x), context: context) * gate.tanh()
    }
}

/// Stage 2: text ↔ a fixed-size latent, with a frozen language model inside.
///
/// The frozen LM reads a passage; K learned queries compress its hidden states through Perceiver layers
/// into K latent vectors of width d, each normalised to mean 0 and variance 1 (norm √d, the scale of the
/// diffusion noise). A reconstruction network turns the latent into conditioning vectors that steer the
/// frozen LM as it decodes the passage — through per-layer key/value prefixes (default) or gated
/// cross-attention adapters after each frozen block. The LM's own weights never change.
///
/// ```swift
/// let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
/// let z = ae.encode(batch)                      // [B, K, d]
/// let texts = ae.decode(z, endOfText: eot)      // token ids per passage
/// ```
public final class LatentAutoencoder: Module {
    public let config: AutoencoderConfig
    public let lm: Frozen<GPT>
    // Compression network.
    public let queries: Tensor                  // [K, W]
    public let compressor: [PerceiverLayer]
    public let lnLatent: LayerNorm
    public let toLatent: Linear                 // W → d
    // Reconstruction network.
    public let fromLatent: Linear               // d → W
    public let latentPositions: Tensor          // [K, W]
    public let reconstruction: [TransformerBlock]
    public let lnPrefix: LayerNorm
    public let toPrefix: Linear?                // W → layers · 2 · C (prefix conditioning)
    public let adapters: [GatedCrossAttention]  // one per LM block (adapter conditioning)

    public init(_ config: AutoencoderConfig, languageModel: GPT, generator: inout SeededGenerator) {
        self.config = config
        lm = Frozen(languageModel)
        let (k, w, c) = (config.latents, config.width, languageModel.config.width)
        queries = Tensor.randn([k, w], std: 0.02, generator: &generator).requiringGrad()
        compressor = (0..<config.compressorLayers).map { _ in
            PerceiverLayer(w, contextWidth: c, heads: config.heads, generator: &generator)
        }
        lnLatent = LayerNorm(w)
        toLatent = Linear(w, config.latentWidth, generator: &generator)
        fromLatent = Linear(config.latentWidth, w, generator: &generator)
        latentPositions = Tensor.randn([k, w], std: 0.02, generator: &generator).requiringGrad()
        reconstruction = (0..<config.reconstructionLayers).map { _ in
            TransformerBlock(w, heads: config.heads, causal: false, generator: &generator)
        }
        lnPrefix = LayerNorm(w)
        switch config.conditioning {
        case .prefix:
            toPrefix = Linear(w, languageModel.config.layers * 2 * c, generator: &generator)
            adapters = []
        case .adapters:
            toPrefix = nil
            adapters = (0..<languageModel.config.layers).map { _ in
                GatedCrossAttention(c, contextWidth: w, heads: languageModel.config.heads, generator: &generator)
            }
        }
        super.init()
        // Fan-in scaled weights, U(±1/√fan_in) as PyTorch's default: the GPT-style N(0, 0.02) starts these
        // 1–3-layer networks with signals too weak to carry a passage, and the latent was learned ~10× slower.
        for (name, weight) in namedParameters() where name.hasSuffix(".weight") && weight.rank == 2 {
            let bound = 1 / Float(weight.shape[1]).squareRoot()
            weight.assign(Tensor.uniform(weight.shape, low: -bound, high: bound, generator: &generator).data)
        }
    }

    public var languageModel: GPT { lm.module }

    /// Latents `[B, K, d]` of padded passages (`tokens`, `mask`: `[B, L]`), each vector normalised.
    public func encode(tokens: [Int32], mask: [Float], batch: Int, length: Int) -> Tensor {
        let hidden = withNoGrad { languageModel.hiddenStates(tokens, batch: batch, length: length).final } // [B, L, C]
        var q = Tensor.zeros([batch, config.latents, config.width]) + queries                              // [B, K, W]
        for layer in compressor { q = layer(q, context: hidden, contextMask: mask) }
        return layerNorm(toLatent(lnLatent(q)), weight: nil, bias: nil)                                    // [B, K, d]
    }

    /// How the decoder is steered for latents `z: [B, K, d]`: per-layer prefixes or an adapter hook.
    public struct DecoderConditioning {
        public let prefixes: [KeyValuePrefix]?
        public let afterBlock: ((Int, Tensor) -> Tensor)?
    }

    /// The reconstruction network's output for latents `z: [B, K, d]` as decoder conditioning.
    public func conditioning(_ z: Tensor) -> DecoderConditioning {
        var r = fromLatent(z) + latentPositions                                                  // [B, K, W]
        for block in reconstruction { r = block(r) }
        r = lnPrefix(r)
        guard let toPrefix else {
            let context = r
            return DecoderConditioning(prefixes: nil, afterBlock: { [adapters] i, x in adapters[i](x, context: context) })
        }
        let c = languageModel.config.width
        let kv = toPrefix(r)                                                                     // [B, K, layers·2·C]
        let parts = kv.split(axis: 2, sizes: [Int](repeating: c, count: 2 * languageModel.config.layers))
        return DecoderConditioning(prefixes: (0..<languageModel.config.layers).map {
            KeyValuePrefix(keys: parts[2 * $0], values: parts[2 * $0 + 1])
        }, afterBlock: nil)
    }

    /// Teacher-forced reconstruction cross-entropy of the passages from (optionally noised) latents:
    /// the LM reads `[EOT, t₁ … tₙ]` and must predict `[t₁ … tₙ, EOT]`.
    /// With a `generator`, `inputDropout` of the decoder's input tokens are replaced by EOT.
    public func reconstructionLoss(_ z: Tensor, tokens: [Int32], mask: [Float], batch: Int, length: Int, endOfText: Int32,
                                   dropoutGenerator generator: UnsafeMutablePointer<SeededGenerator>? = nil) -> Tensor {
        var (input, targets) = Self.teacherForcing(tokens: tokens, mask: mask, batch: batch, length: length, endOfText: endOfText)
        if let generator, config.inputDropout > 0 {
            for i in input.indices where i % (length + 1) != 0 && generator.pointee.nextUniform() < config.inputDropout {
                input[i] = endOfText
            }
        }
        let steer = conditioning(z)
        let logits = languageModel(input, batch: batch, length: length + 1, prefixes: steer.prefixes,
                                   afterBlock: steer.afterBlock)                                 // [B, L+1, V]
        return crossEntropy(logits, targets: targets)
    }

    /// Decoder inputs `[EOT, t…]` and targets `[t…, EOT, -1…]`, each `[B, L+1]`.
    static func teacherForcing(tokens: [Int32], mask: [Float], batch: Int, length: Int, endOfText: Int32) -> ([Int32], [Int32]) {
        var input = [Int32](repeating: endOfText, count: batch * (length + 1))
        var targets = [Int32](repeating: -1, count: batch * (length + 1))
        for b in 0..<batch {
            var n = 0
            for t in 0..<length where mask[b * length + t] != 0 {
                input[b * (length + 1) + t + 1] = tokens[b * length + t]
                targets[b * (length + 1) + t] = tokens[b * length + t]
                n = t + 1
            }
            targets[b * (length + 1) + n] = endOfText
        }
        return (input, targets)
    }

    /// Decodes latents `z: [B, K, d]` to token ids (without the final EOT), greedily or by sampling,
    /// through the KV cache seeded with the prefixes.
    public func decode(_ z: Tensor, endOfText: Int, maxLength: Int? = nil, options: SamplingOptions = SamplingOptions(temperature: 0),
                       generator: inout SeededGenerator) -> [[Int]] {
        let batch = z.shape[0]
        let limit = min(maxLength ?? config.maxLength + 1, languageModel.config.contextLength)
        let v = languageModel.config.vocabSize
        return withNoGrad {
            let steer = conditioning(z)
            let caches = steer.prefixes?.map { KVCache(prefix: $0) } ?? languageModel.makeCaches()
            var outputs = [[Int]](repeating: [], count: batch)
            var finished = [Bool](repeating: false, count: batch)
            var next = [Int32](repeating: Int32(endOfText), count: batch)
            for _ in 0..<limit {
                let logits = languageModel(next, batch: batch, length: 1, caches: caches, afterBlock: steer.afterBlock) // [B, 1, V]
                for b in 0..<batch {
                    let token = sampleToken(logits.data[(b * v)..<((b + 1) * v)], options, generator: &generator)
                    next[b] = Int32(token)
                    if finished[b] { continue }
                    if token == endOfText { finished[b] = true } else { outputs[b].append(token) }
                }
                if finished.allSatisfy({ $0 }) { break }
            }
            return outputs
        }
    }
}
