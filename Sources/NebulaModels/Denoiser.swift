import Foundation
import NebulaNN
import NebulaTensor

/// The shape of a latent denoiser: stored as its folder's `config.json`.
public struct DenoiserConfig: Codable, Equatable, Sendable {
    /// K and d of the autoencoder's latents.
    public var latents = 16
    public var latentWidth = 64
    public var width = 256
    public var layers = 6
    public var heads = 8
    /// Feed the previous estimate of x0 back in (Chen et al. 2022), used with p = 0.5 in training.
    public var selfConditioning = true
    /// Width of the conditioning sequence (a prompt passage's latent vectors, or its frozen-LM hidden
    /// states); 0 = unconditional only.
    public var contextWidth = 0
    /// Whether the denoiser also reads which latent vectors are known and their clean values (a mask channel, for
    /// infilling): trained with random spans of a passage's vectors given, it is an infilling model and an
    /// unconditional one (nothing known) in one.
    public var knownLatents = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case latents, latentWidth = "latent_width", width, layers, heads, selfConditioning = "self_conditioning"
        case contextWidth = "context_width", knownLatents = "known_latents"
    }

    /// Reads a `config.json`; a key that is absent keeps its default (configs written by an earlier version).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let found = try c.decodeIfPresent(T.self, forKey: key) { value = found }
        }
        try read(.latents, &latents); try read(.latentWidth, &latentWidth); try read(.width, &width); try read(.layers, &layers)
        try read(.heads, &heads); try read(.selfConditioning, &selfConditioning); try read(.contextWidth, &contextWidth)
        try read(.knownLatents, &knownLatents)
    }
}

/// `x·(1 + scale) + shift`, with `shift` and `scale` `[B, 1, W]` broadcast over the sequence (DiT).
func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor { x * (scale + 1) + shift }

/// Sinusoidal features of diffusion times `t ∈ [0, 1]`: `[B, width]`, frequencies from 1 to 1/10000
/// applied to `1000·t` (as DDPM's integer timesteps).
public func timestepEmbedding(_ times: [Float], width: Int) -> Tensor {
    let half = width / 2
    var values = [Float](repeating: 0, count: times.count * width)
    for (b, t) in times.enumerated() {
        for i in 0..<half {
            let frequency = Foundation.exp(-Foundation.log(10000) * Float(i) / Float(half))
            let angle = 1000 * t * frequency
            values[b * width + i] = Foundation.cos(angle)
            values[b * width + half + i] = Foundation.sin(angle)
        }
    }
    return Tensor(shape: [times.count, width], data: values)
}

/// A DiT block with adaLN-Zero: the time embedding sets the shift, scale and gate of the attention and
/// MLP branches through a zero-initialised linear layer, so each block starts as the identity. An
/// optional cross-attention branch reads the condition.
public final class DenoiserBlock: Module {
    public let norm1: LayerNorm
    public let attn: SelfAttention
    public let norm2: LayerNorm
    public let mlp: MLP
    public let modulation: Linear  // W → 6W, zero-initialised
    public let normCross: LayerNorm?
    public let cross: CrossAttention?

    public init(_ width: Int, heads: Int, contextWidth: Int, generator: inout SeededGenerator) {
        norm1 = LayerNorm(width, affine: false)
        attn = SelfAttention(width, heads: heads, causal: false, generator: &generator)
        norm2 = LayerNorm(width, affine: false)
        mlp = MLP(width, hidden: 4 * width, generator: &generator)
        modulation = Linear(width, 6 * width, std: 0, generator: &generator)
        if contextWidth > 0 {
            normCross = LayerNorm(width)
            cross = CrossAttention(width, contextDimension: contextWidth, heads: heads, generator: &generator)
        } else {
            (normCross, cross) = (nil, nil)
        }
    }

    /// `x: [B, K, W]`, `c: [B, W]` (time embedding), `context: [B, L, Cc]` with `contextMask: [B, L]`.
    public func callAsFunction(_ x: Tensor, c: Tensor, context: Tensor?, contextMask: [Float]?) -> Tensor {
        let (b, w) = (x.shape[0], x.shape[2])
        let m = modulation(c.silu()).reshaped([b, 1, 6 * w]).split(axis: 2, sizes: [Int](repeating: w, count: 6))
        var h = x + m[2] * attn(modulate(norm1(x), shift: m[0], scale: m[1]))
        if let cross, let normCross, let context {
            h = h + cross(normCross(h), context: context, contextMask: contextMask)
        }
        return h + m[5] * mlp(modulate(norm2(h), shift: m[3], scale: m[4]))
    }
}

/// Stage 3's network: a bidirectional transformer over the K latent vectors that predicts, for a noisy
/// latent `z_t` at time `t`, the diffusion target (v by default). Time enters through adaLN-Zero (DiT);
/// the previous x0 estimate can be fed back (self-conditioning); a prompt passage's frozen-LM hidden
/// states condition it through cross-attention, replaced by a learned null sequence when dropped
/// (classifier-free guidance). With `knownLatents`, a mask channel says which vectors are known and gives their
/// clean values (``knownInput(latents:known:)``): infilling.
///
/// ```swift
/// let out = denoiser(zt, times: t, selfCondition: x0Previous, context: nil, contextMask: nil)   // [B, K, d]
/// ```
public final class Denoiser: Module {
    public let config: DenoiserConfig
    public let inputProjection: Linear  // d (or 2d) → W
    public let positions: Tensor  // [K, W]
    public let timeMLP1: Linear
    public let timeMLP2: Linear
    public let blocks: [DenoiserBlock]
    public let finalNorm: LayerNorm
    public let finalModulation: Linear  // W → 2W, zero-initialised
    public let outputProjection: Linear  // W → d, zero-initialised
    /// The learned "no condition" sequence `[1, W_c]` used when the condition is dropped.
    public let nullContext: Tensor?
    /// The known vectors and their mask `[B, K, d + 1]` → W, zero-initialised (so a denoiser grown from one without
    /// it starts as that one).
    public let knownProjection: Linear?

    public init(_ config: DenoiserConfig, generator: inout SeededGenerator) {
        self.config = config
        let (d, w) = (config.latentWidth, config.width)
        inputProjection = Linear(config.selfConditioning ? 2 * d : d, w, generator: &generator)
        positions = Tensor.randn([config.latents, w], std: 0.02, generator: &generator).requiringGrad()
        timeMLP1 = Linear(w, w, generator: &generator)
        timeMLP2 = Linear(w, w, generator: &generator)
        blocks = (0..<config.layers).map { _ in
            DenoiserBlock(w, heads: config.heads, contextWidth: config.contextWidth, generator: &generator)
        }
        finalNorm = LayerNorm(w, affine: false)
        finalModulation = Linear(w, 2 * w, std: 0, generator: &generator)
        outputProjection = Linear(w, d, std: 0, generator: &generator)
        nullContext =
            config.contextWidth > 0
            ? Tensor.randn([1, config.contextWidth], std: 0.02, generator: &generator).requiringGrad() : nil
        knownProjection = config.knownLatents ? Linear(d + 1, w, std: 0, generator: &generator) : nil
    }

    /// The mask channel of rows whose vectors `known[b][j]` are given: `[B, K, d + 1]`, each known vector's clean
    /// latent followed by 1, zeros elsewhere.
    public static func knownInput(latents: Tensor, known: [[Bool]]) -> Tensor {
        let (b, k, d) = (latents.shape[0], latents.shape[1], latents.shape[2])
        precondition(known.count == b && known.allSatisfy { $0.count == k }, "knownInput: one mask of \(k) per row")
        var values = [Float](repeating: 0, count: b * k * (d + 1))
        let source = latents.data
        for row in 0..<b {
            for j in 0..<k where known[row][j] {
                let (from, to) = ((row * k + j) * d, (row * k + j) * (d + 1))
                for e in 0..<d { values[to + e] = source[from + e] }
                values[to + d] = 1
            }
        }
        return Tensor(shape: [b, k, d + 1], data: values)
    }

    /// The model output `[B, K, d]` for noisy latents `z: [B, K, d]` at `times` (one per row).
    /// `selfCondition` is the previous x0 estimate (zeros when absent). A nil `context` on a conditional
    /// model uses the learned null condition; `dropContext[b]` replaces row b's condition by it too. `known`
    /// (`[B, K, d + 1]`, ``knownInput(latents:known:)``) is read by a denoiser with `knownLatents` (nil: none known).
    public func callAsFunction(
        _ z: Tensor, times: [Float], selfCondition: Tensor? = nil,
        context: Tensor? = nil, contextMask: [Float]? = nil, dropContext: [Bool]? = nil, known: Tensor? = nil
    ) -> Tensor {
        let (b, k, w) = (z.shape[0], config.latents, config.width)
        precondition(z.shape == [b, k, config.latentWidth], "Denoiser: latents \(z.shape) should be [B, \(k), \(config.latentWidth)]")
        var input = z
        if config.selfConditioning {
            input = Tensor.concatenate([z, selfCondition ?? Tensor.zeros(z.shape)], axis: 2)  // [B, K, 2d]
        }
        var h = inputProjection(input) + positions  // [B, K, W]
        if let knownProjection {
            h = h + knownProjection(known ?? Tensor.zeros([b, k, config.latentWidth + 1]))
        }
        let c = timeMLP2(timeMLP1(timestepEmbedding(times, width: w)).silu())  // [B, W]
        let (ctx, mask) = conditioning(batch: b, context: context, contextMask: contextMask, drop: dropContext)
        for block in blocks { h = block(h, c: c, context: ctx, contextMask: mask) }
        let m = finalModulation(c.silu()).reshaped([b, 1, 2 * w]).split(axis: 2, sizes: [w, w])
        return outputProjection(modulate(finalNorm(h), shift: m[0], scale: m[1]))  // [B, K, d]
    }

    /// The condition each row sees: its context, or the null sequence (one position) when dropped/absent.
    private func conditioning(batch: Int, context: Tensor?, contextMask: [Float]?, drop: [Bool]?) -> (Tensor?, [Float]?) {
        guard let nullContext else { return (nil, nil) }
        let nullRow = Tensor.zeros([batch, 1, config.contextWidth]) + nullContext  // [B, 1, Wc]
        guard let context else { return (nullRow, nil) }
        let length = context.shape[1]
        // Append the null position to every row; a dropped row masks out its real context instead.
        let combined = Tensor.concatenate([context, nullRow], axis: 1)  // [B, L+1, Wc]
        var mask = [Float](repeating: 0, count: batch * (length + 1))
        for row in 0..<batch {
            let dropped = drop?[row] ?? false
            for t in 0..<length { mask[row * (length + 1) + t] = dropped ? 0 : (contextMask?[row * length + t] ?? 1) }
            mask[row * (length + 1) + length] = dropped ? 1 : 0
        }
        return (combined, mask)
    }
}
