import NebulaNN
import NebulaTensor

/// The parallel decoder (the Cosmos recipe): every latent vector is spread back over its L/K positions,
/// a bidirectional transformer refines all L positions together, and every token is predicted at once —
/// decoding a passage is one forward pass.
///
/// Two heads read the final states: `tokenHead` maps them into the language model's embedding space,
/// where the LM's own (frozen) token embedding gives the logits; `stateHead` predicts the frozen LM's
/// hidden state at each position, the alignment loss that keeps the latent space semantic.
public final class ParallelDecoder: Module {
    public let fromLatent: Linear  // d → (L/K)·W
    public let positions: Tensor  // [L, W]
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    public let tokenHead: Linear  // W → C
    public let stateHead: Linear  // W → C

    public init(
        latentWidth: Int, width: Int, heads: Int, layers: Int, length: Int, latents: Int, stateWidth: Int,
        generator: inout SeededGenerator
    ) {
        fromLatent = Linear(latentWidth, length / latents * width, generator: &generator)
        positions = Tensor.randn([length, width], std: 0.02, generator: &generator).requiringGrad()
        blocks = (0..<layers).map { _ in TransformerBlock(width, heads: heads, causal: false, generator: &generator) }
        norm = LayerNorm(width)
        tokenHead = Linear(width, stateWidth, generator: &generator)
        stateHead = Linear(width, stateWidth, generator: &generator)
    }

    /// Latents `z: [B, K, d]` → per-position states `[B, L, W]`; `inputs` (`[B, L, W]`) is added to every position's
    /// input (a draft of the passage, for a decoder that refines one).
    public func callAsFunction(_ z: Tensor, inputs: Tensor? = nil) -> Tensor {
        let (b, l, w) = (z.shape[0], positions.shape[0], positions.shape[1])
        var h = fromLatent(z).reshaped([b, l, w]) + positions  // [B, L, W]
        if let inputs { h = h + inputs }
        for block in blocks { h = block(h) }
        return norm(h)
    }

    /// Token logits `[B, L, V]` from the states, through the language model's token embedding `[V, C]`.
    public func logits(_ states: Tensor, embedding: Tensor) -> Tensor {
        linear(tokenHead(states), weight: embedding)
    }
}

/// Cross-attention from the decoding language model's residual stream to the parallel decoder's states,
/// added after every block: `x + attention(ln(x), context)`. No gate: the output projection starts small
/// but not at 0, so the route carries signal from the first step.
public final class LatentCrossAttention: Module {
    public let norm: LayerNorm
    public let attention: CrossAttention

    public init(_ width: Int, contextWidth: Int, heads: Int, generator: inout SeededGenerator) {
        norm = LayerNorm(width)
        attention = CrossAttention(width, contextDimension: contextWidth, heads: heads, generator: &generator)
    }

    /// `x: [B, T, C]` and the context's keys and values → `[B, T, C]`.
    public func callAsFunction(_ x: Tensor, keysValues: (keys: Tensor, values: Tensor)) -> Tensor {
        x + attention(norm(x), keysValues: keysValues)
    }
}

/// The autoregressive decoder: a GPT initialised from the stage-1 language model and fine-tuned, which
/// reads the latent twice — the parallel decoder's state for position t is added to its input at t (the
/// positional prior), and every block cross-attends to all of those states. It decodes token by token
/// with the KV cache and falls back on the language model's fluency where the latent is vague.
public final class AutoregressiveDecoder: Module {
    public let gpt: GPT
    public let input: Linear  // W → C
    public let cross: [LatentCrossAttention]

    public init(languageModel: GPT, contextWidth: Int, generator: inout SeededGenerator) {
        let c = languageModel.config
        gpt = GPT(c, generator: &generator)
        input = Linear(contextWidth, c.width, generator: &generator)
        cross = (0..<c.layers).map { _ in LatentCrossAttention(c.width, contextWidth: contextWidth, heads: c.heads, generator: &generator) }
    }

    /// Starts the decoder's GPT from the language model's weights.
    public func copyLanguageModel(_ languageModel: GPT) {
        for (mine, theirs) in zip(gpt.parameters(), languageModel.parameters()) { mine.assign(theirs.data) }
    }

    /// What the decoder reads from the parallel decoder's states, computed once per passage batch: the
    /// per-position input offsets and every block's cross-attention keys and values.
    public struct Memory {
        let offsets: Tensor  // [B, L, C]
        let keysValues: [(keys: Tensor, values: Tensor)]
    }

    /// The memory of the parallel decoder's states `context: [B, L, W]`.
    public func memory(_ context: Tensor) -> Memory {
        Memory(offsets: input(context), keysValues: cross.map { $0.attention.keysValues(context) })
    }

    /// Logits `[B, T, V]` for decoder inputs `ids` (`[B, T]`, starting at position `start` of the cache).
    public func callAsFunction(_ ids: [Int32], batch: Int, length: Int, memory: Memory, caches: [KVCache]? = nil) -> Tensor {
        let start = caches?.first?.count ?? 0
        let l = memory.offsets.shape[1]
        // Position t's input gets the parallel decoder's state t (none past the latent's L positions).
        let aligned = max(0, min(start + length, l) - start)
        var offset: Tensor? = nil
        if aligned > 0 {
            let states = memory.offsets.slice(axis: 1, start..<(start + aligned))  // [B, aligned, C]
            offset =
                aligned == length
                ? states
                : Tensor.concatenate([states, Tensor.zeros([batch, length - aligned, gpt.config.width])], axis: 1)  // [B, T, C]
        }
        return gpt(
            ids, batch: batch, length: length, caches: caches, inputOffset: offset,
            afterBlock: { [cross] i, x in cross[i](x, keysValues: memory.keysValues[i]) })
    }
}
