import NebulaNN
import NebulaTensor

/// Stage 2's trainable compressor: the frozen language model's hidden states `[B, L, C]` in, K latent
/// vectors of width d out.
///
/// A small bidirectional transformer reads the states (padding masked out); its outputs are cut into K
/// patches of L/K consecutive positions (padding zeroed) and each patch is mapped to one latent vector — a positional
/// prior: latent i holds tokens `[i·L/K, (i+1)·L/K)`, as an image latent pixel holds its patch. Each
/// vector is normalised (mean 0, variance 1 over its d values: the diffusion noise's scale). Free-query
/// Perceiver latents were measured against this design on TinyStories and did not start learning.
public final class PatchEncoder: Module {
    public let input: Linear  // C → W
    public let positions: Tensor  // [L, W]
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    public let toLatent: Linear  // (L/K)·W → d
    public let latents: Int

    public init(
        stateWidth: Int, width: Int, heads: Int, layers: Int, length: Int, latents: Int, latentWidth: Int,
        generator: inout SeededGenerator
    ) {
        precondition(length % latents == 0, "PatchEncoder: the passage length \(length) is not a multiple of \(latents) latents")
        input = Linear(stateWidth, width, generator: &generator)
        positions = Tensor.randn([length, width], std: 0.02, generator: &generator).requiringGrad()
        blocks = (0..<layers).map { _ in TransformerBlock(width, heads: heads, causal: false, generator: &generator) }
        norm = LayerNorm(width)
        toLatent = Linear(length / latents * width, latentWidth, generator: &generator)
        self.latents = latents
    }

    /// `states: [B, L, C]`, `mask: [B, L]` (1 = real token) → latents `[B, K, d]`, each vector normalised.
    public func callAsFunction(_ states: Tensor, mask: [Float]) -> Tensor {
        let (b, l) = (states.shape[0], states.shape[1])
        var h = input(states) + positions  // [B, L, W]
        for block in blocks { h = block(h, keyMask: mask) }
        let real = norm(h) * Tensor(shape: [b, l, 1], data: mask)  // [B, L, W], padding zeroed
        let patches = real.reshaped([b, latents, l / latents * h.shape[2]])  // [B, K, (L/K)·W]
        return layerNorm(toLatent(patches), weight: nil, bias: nil)  // [B, K, d]
    }
}
