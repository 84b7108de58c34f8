import NebulaTensor

/// Keys and values of the tokens seen so far, for incremental (one token at a time) decoding.
public final class KVCache {
    /// `[B, T, C]` each, growing along T.
    public private(set) var keys: Tensor?
    public private(set) var values: Tensor?
    public init() {}

    /// Number of cached positions.
    public var count: Int { keys?.shape[1] ?? 0 }

    func append(keys k: Tensor, values v: Tensor) -> (Tensor, Tensor) {
        keys = keys.map { Tensor.concatenate([$0, k], axis: 1) } ?? k
        values = values.map { Tensor.concatenate([$0, v], axis: 1) } ?? v
        return (keys!, values!)
    }
}

/// Multi-head self-attention with a fused q|k|v projection (`qkv`) and an output projection (`proj`).
public final class SelfAttention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int
    public let causal: Bool

    public init(_ dimension: Int, heads: Int, causal: Bool, projectionStd: Float = 0.02, generator: inout SeededGenerator) {
        precondition(dimension % heads == 0, "SelfAttention: width \(dimension) is not divisible by \(heads) heads")
        qkv = Linear(dimension, 3 * dimension, generator: &generator)
        proj = Linear(dimension, dimension, std: projectionStd, generator: &generator)
        self.heads = heads
        self.causal = causal
    }

    /// `x: [B, T, C]` → `[B, T, C]`. With a cache, `x` holds only the new positions and attends to the
    /// cached ones too; `keyMask` is `[B, T_keys]` over all keys seen (1 = real token).
    public func callAsFunction(_ x: Tensor, keyMask: [Float]? = nil, cache: KVCache? = nil) -> Tensor {
        let c = x.shape[2]
        let parts = qkv(x).split(axis: 2, sizes: [c, c, c])          // 3 × [B, T, C]
        var (k, v) = (parts[1], parts[2])
        if let cache { (k, v) = cache.append(keys: k, values: v) }   // [B, T_cached + T, C]
        let y = scaledDotProductAttention(query: parts[0], key: k, value: v, heads: heads, causal: causal, keyMask: keyMask)
        return proj(y)
    }

    /// One new position for each of B sequences that have their own caches (of different lengths):
    /// `x: [B, 1, C]` → `[B, 1, C]`. The projections run once over all rows; only the attention itself
    /// goes row by row, against each row's cache (continuous batching).
    public func callAsFunction(_ x: Tensor, caches: [KVCache]) -> Tensor {
        let (b, c) = (x.shape[0], x.shape[2])
        precondition(x.shape[1] == 1 && caches.count == b, "SelfAttention: \(caches.count) caches for new positions \(x.shape)")
        let parts = qkv(x).split(axis: 2, sizes: [c, c, c])          // 3 × [B, 1, C]
        let rows = (0..<b).map { row -> Tensor in
            let one = row..<(row + 1)
            let (k, v) = caches[row].append(keys: parts[1].slice(axis: 0, one), values: parts[2].slice(axis: 0, one))  // [1, T_row, C]
            return scaledDotProductAttention(query: parts[0].slice(axis: 0, one), key: k, value: v, heads: heads, causal: causal)
        }
        return proj(b == 1 ? rows[0] : Tensor.concatenate(rows, axis: 0))
    }
}

/// Multi-head cross-attention: queries from `x`, keys and values from a `context` sequence.
public final class CrossAttention: Module {
    public let q: Linear
    public let kv: Linear
    public let proj: Linear
    public let heads: Int

    public init(_ dimension: Int, contextDimension: Int, heads: Int, projectionStd: Float = 0.02, generator: inout SeededGenerator) {
        precondition(dimension % heads == 0, "CrossAttention: width \(dimension) is not divisible by \(heads) heads")
        q = Linear(dimension, dimension, generator: &generator)
        kv = Linear(contextDimension, 2 * dimension, generator: &generator)
        proj = Linear(dimension, dimension, std: projectionStd, generator: &generator)
        self.heads = heads
    }

    /// `x: [B, Tq, C]`, `context: [B, Tk, Cc]`, `contextMask: [B, Tk]` → `[B, Tq, C]`.
    public func callAsFunction(_ x: Tensor, context: Tensor, contextMask: [Float]? = nil) -> Tensor {
        self(x, keysValues: keysValues(context), contextMask: contextMask)
    }

    /// The keys and values `[B, Tk, C]` of a context, computed once and reused over many calls (decoding
    /// token by token against a fixed context).
    public func keysValues(_ context: Tensor) -> (keys: Tensor, values: Tensor) {
        let parts = kv(context).split(axis: 2, sizes: [q.weight.shape[0], q.weight.shape[0]])
        return (parts[0], parts[1])
    }

    /// `x: [B, Tq, C]` attending to precomputed context keys and values → `[B, Tq, C]`.
    public func callAsFunction(_ x: Tensor, keysValues: (keys: Tensor, values: Tensor), contextMask: [Float]? = nil) -> Tensor {
        proj(scaledDotProductAttention(query: q(x), key: keysValues.keys, value: keysValues.values, heads: heads, keyMask: contextMask))
    }
}

/// A pre-LayerNorm transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
public final class TransformerBlock: Module {
    public let ln1: LayerNorm
    public let attn: SelfAttention
    public let ln2: LayerNorm
    public let mlp: MLP

    /// - Parameter projectionStd: init std of the two residual projections (GPT-2: 0.02/√(2·layers)).
    public init(_ dimension: Int, heads: Int, causal: Bool, mlpRatio: Int = 4, projectionStd: Float = 0.02,
                generator: inout SeededGenerator) {
        ln1 = LayerNorm(dimension)
        attn = SelfAttention(dimension, heads: heads, causal: causal, projectionStd: projectionStd, generator: &generator)
        ln2 = LayerNorm(dimension)
        mlp = MLP(dimension, hidden: mlpRatio * dimension, projectionStd: projectionStd, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor, keyMask: [Float]? = nil, cache: KVCache? = nil) -> Tensor {
        let h = x + attn(ln1(x), keyMask: keyMask, cache: cache)
        return h + mlp(ln2(h))
    }
}
