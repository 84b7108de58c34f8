import NebulaTensor

/// Keys and values of the tokens seen so far, for incremental (one token at a time) decoding.
///
/// Storage is preallocated and grows by doubling, so appending a position copies only that position; a
/// decoding step's attention reads the keys and values where they lie (`attend`).
public final class KVCache {
    /// Number of cached positions.
    public private(set) var count = 0
    private var rows = 0, width = 0, capacity = 0
    /// `[B, capacity, C]` each: row b's position t starts at `(b·capacity + t)·C`.
    private var keys: [Float] = [], values: [Float] = []

    public init() {}

    /// Room for `extra` more positions of `rows` rows of width `width`.
    private func reserve(rows: Int, width: Int, extra: Int) {
        if count == 0 {
            (self.rows, self.width) = (rows, width)
        } else {
            precondition(
                rows == self.rows && width == self.width,
                "KVCache: new positions [\(rows), _, \(width)] do not match the cached [\(self.rows), \(count), \(self.width)]")
        }
        let needed = count + extra
        guard needed > capacity else { return }
        let newCapacity = Swift.max(needed, 2 * capacity, 16)
        func moved(_ old: [Float]) -> [Float] {
            var new = [Float](repeating: 0, count: rows * newCapacity * width)
            for b in 0..<rows where count > 0 {
                new.replaceSubrange(
                    (b * newCapacity * width)..<((b * newCapacity + count) * width),
                    with: old[(b * capacity * width)..<((b * capacity + count) * width)])
            }
            return new
        }
        keys = moved(keys)
        values = moved(values)
        capacity = newCapacity
    }

    /// Appends `k`, `v` (`[B, T, C]`) and returns every cached key and value, `[B, count, C]` each (copies, for
    /// the general attention of a prompt or of a step that needs a gradient).
    func append(keys k: Tensor, values v: Tensor) -> (Tensor, Tensor) {
        let (b, t, c) = (k.shape[0], k.shape[1], k.shape[2])
        reserve(rows: b, width: c, extra: t)
        for row in 0..<b {
            let destination = (row * capacity + count) * c
            keys.replaceSubrange(destination..<(destination + t * c), with: k.data[(row * t * c)..<((row + 1) * t * c)])
            values.replaceSubrange(destination..<(destination + t * c), with: v.data[(row * t * c)..<((row + 1) * t * c)])
        }
        count += t
        func cached(_ store: [Float]) -> Tensor {
            var data: [Float] = []
            data.reserveCapacity(b * count * c)
            for row in 0..<b { data += store[(row * capacity * c)..<((row * capacity + count) * c)] }
            return Tensor(shape: [b, count, c], data: data)
        }
        return (cached(keys), cached(values))
    }

    /// Appends one position for each of this cache's B rows, from a fused projection: row b's key and value are
    /// the `[C]` slices at `qkv + b·3C + C` and `+ 2C` (`[B, 1, 3C]` holding q|k|v).
    func appendPosition(qkv: UnsafePointer<Float>, rows b: Int, width c: Int) {
        reserve(rows: b, width: c, extra: 1)
        keys.withUnsafeMutableBufferPointer { k in
            values.withUnsafeMutableBufferPointer { v in
                for row in 0..<b {
                    let destination = (row * capacity + count) * c
                    (k.baseAddress! + destination).update(from: qkv + row * 3 * c + c, count: c)
                    (v.baseAddress! + destination).update(from: qkv + row * 3 * c + 2 * c, count: c)
                }
            }
        }
        count += 1
    }

    /// Row `row`'s query (`[C]`) attends to all of the row's cached positions; writes `[C]` to `out`.
    func attend(query: UnsafePointer<Float>, row: Int, heads: Int, out: UnsafeMutablePointer<Float>) {
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                let start = row * capacity * width
                singleQueryAttention(
                    query: query, keys: k.baseAddress! + start, values: v.baseAddress! + start,
                    count: count, stride: width, heads: heads, headWidth: width / heads, out: out)
            }
        }
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
        guard let cache else { return proj(fusedSelfAttention(qkv(x), heads: heads, causal: causal, keyMask: keyMask)) }
        if x.shape[1] == 1, keyMask == nil, !GradMode.isEnabled { return decode(x, caches: [cache], rowsPerCache: x.shape[0]) }
        let c = x.shape[2]
        let parts = qkv(x).split(axis: 2, sizes: [c, c, c])  // 3 × [B, T, C]
        let (k, v) = cache.append(keys: parts[1], values: parts[2])  // [B, T_cached + T, C]
        let y = scaledDotProductAttention(query: parts[0], key: k, value: v, heads: heads, causal: causal, keyMask: keyMask)
        return proj(y)
    }

    /// One new position for each of B sequences that have their own caches (of different lengths):
    /// `x: [B, 1, C]` → `[B, 1, C]`. The projections run once over all rows; only the attention itself
    /// goes row by row, against each row's cache (continuous batching).
    public func callAsFunction(_ x: Tensor, caches: [KVCache]) -> Tensor {
        precondition(x.shape[1] == 1 && caches.count == x.shape[0], "SelfAttention: \(caches.count) caches for new positions \(x.shape)")
        if !GradMode.isEnabled { return decode(x, caches: caches, rowsPerCache: 1) }
        let c = x.shape[2]
        let parts = qkv(x).split(axis: 2, sizes: [c, c, c])  // 3 × [B, 1, C]
        let rows = (0..<x.shape[0]).map { row -> Tensor in
            let one = row..<(row + 1)
            let (k, v) = caches[row].append(keys: parts[1].slice(axis: 0, one), values: parts[2].slice(axis: 0, one))  // [1, T_row, C]
            return scaledDotProductAttention(query: parts[0].slice(axis: 0, one), key: k, value: v, heads: heads, causal: causal)
        }
        return proj(Tensor.concatenate(rows, axis: 0))
    }

    /// The decoding step without gradient: `x: [B, 1, C]`, rows `rowsPerCache` at a time to each cache in turn.
    /// Each cache takes its new keys and values in place and attention reads them there.
    private func decode(_ x: Tensor, caches: [KVCache], rowsPerCache: Int) -> Tensor {
        let (b, c) = (x.shape[0], x.shape[2])
        let projected = qkv(x)  // [B, 1, 3C]
        var out = [Float](repeating: 0, count: b * c)
        projected.data.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                let (p, o) = (p.baseAddress!, o.baseAddress!)
                for (i, cache) in caches.enumerated() {
                    cache.appendPosition(qkv: p + i * rowsPerCache * 3 * c, rows: rowsPerCache, width: c)
                }
                let work = 2 * (caches.first?.count ?? 1) * c  // multiply-adds per row
                Parallel.forRanges(b, grain: Swift.max(1, 32_768 / work)) { range in
                    for row in range {
                        caches[row / rowsPerCache].attend(query: p + row * 3 * c, row: row % rowsPerCache, heads: heads, out: o + row * c)
                    }
                }
            }
        }
        return proj(Tensor(shape: [b, 1, c], data: out))
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
    public init(
        _ dimension: Int, heads: Int, causal: Bool, mlpRatio: Int = 4, projectionStd: Float = 0.02,
        generator: inout SeededGenerator
    ) {
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
