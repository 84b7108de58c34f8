import Foundation

/// Fused multi-head scaled dot-product attention, `softmax(Q·Kᵀ·scale + mask) · V`, with its own backward.
///
/// Tensors stay in the `[B, T, H·D]` layout the projections produce: each head is a column block
/// addressed through BLAS leading dimensions, so no head split/merge copies are made.
///
/// - Parameters:
///   - query: `[B, Tq, H·D]`; key, value: `[B, Tk, H·D]` (self-attention: Tq = Tk; cross: any Tk).
///   - heads: H.
///   - causal: query i may see key j only when `j ≤ i + (Tk − Tq)` (aligned at the end, so a KV-cache step
///     with one new query sees every cached key).
///   - keyMask: optional `[B, Tk]`, 1 = attend, 0 = padding. A query with no visible key outputs zeros.
///   - scale: defaults to `1/√D`.
/// - Returns: `[B, Tq, H·D]`.
///
/// ```swift
/// let y = scaledDotProductAttention(query: q, key: k, value: v, heads: 4, causal: true)
/// ```
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor, heads: Int,
    causal: Bool = false, keyMask: [Float]? = nil, scale: Float? = nil
) -> Tensor {
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3,
                 "attention: query/key/value must be [B, T, H·D], got \(query.shape), \(key.shape), \(value.shape)")
    let (b, tq, c) = (query.shape[0], query.shape[1], query.shape[2])
    let tk = key.shape[1]
    precondition(key.shape == [b, tk, c] && value.shape == [b, tk, c],
                 "attention: key \(key.shape) and value \(value.shape) must be [\(b), Tk, \(c)] to match query \(query.shape)")
    precondition(c % heads == 0, "attention: width \(c) is not divisible by \(heads) heads")
    precondition(!(query === key || key === value || query === value), "attention: query, key and value must be distinct tensors")
    if let keyMask { precondition(keyMask.count == b * tk, "attention: keyMask has \(keyMask.count) values, expected \(b)×\(tk)") }
    let d = c / heads
    let alpha = scale ?? 1 / sqrtf(Float(d))
    let offset = tk - tq
    // Heads go to the workers in groups of at least ~32k multiply-adds: a decoding step's tiny heads run inline.
    let headGrain = max(1, 32_768 / max(1, tq * tk * d))

    // probs: [B, H, Tq, Tk], kept for the backward pass.
    var probs = [Float](repeating: 0, count: b * heads * tq * tk)
    var out = [Float](repeating: 0, count: b * tq * c)
    query.data.withUnsafeBufferPointer { pq in key.data.withUnsafeBufferPointer { pk in value.data.withUnsafeBufferPointer { pv in
    probs.withUnsafeMutableBufferPointer { pp in out.withUnsafeMutableBufferPointer { po in
        let (pq, pk, pv, pp, po) = (pq.baseAddress!, pk.baseAddress!, pv.baseAddress!, pp.baseAddress!, po.baseAddress!)
        Parallel.forRanges(b * heads, grain: headGrain) { range in for bh in range {
            let (i, h) = (bh / heads, bh % heads)
            let q = pq + i * tq * c + h * d, k = pk + i * tk * c + h * d, v = pv + i * tk * c + h * d
            let p = pp + bh * tq * tk
            // S = scale · Q Kᵀ  [Tq, Tk]
            sgemm(transposeA: false, transposeB: true, m: tq, n: tk, k: d, alpha: alpha, a: q, lda: c, b: k, ldb: c, c: p, ldc: tk)
            for row in 0..<tq {
                let s = p + row * tk
                let visible = causal ? Swift.min(tk, Swift.max(0, row + offset + 1)) : tk
                var m = -Float.infinity
                for j in 0..<visible where keyMask == nil || keyMask![i * tk + j] != 0 { m = Swift.max(m, s[j]) }
                if m == -Float.infinity { for j in 0..<tk { s[j] = 0 }; continue }
                var total: Float = 0
                if let keyMask {
                    for j in 0..<tk {
                        let e = j < visible && keyMask[i * tk + j] != 0 ? fastExp(s[j] - m) : 0
                        s[j] = e
                        total += e
                    }
                } else {
                    for j in 0..<visible { s[j] = fastExp(s[j] - m); total += s[j] }
                    for j in visible..<tk { s[j] = 0 }
                }
                let inv = 1 / total
                for j in 0..<tk { s[j] *= inv }
            }
            // O = P V  [Tq, D] into the head's column block
            sgemm(transposeA: false, transposeB: false, m: tq, n: d, k: tk, a: p, lda: tk, b: v, ldb: c,
                  c: po + i * tq * c + h * d, ldc: c)
        } }
    } } } } }

    return Tensor.result(shape: [b, tq, c], data: out, inputs: [query, key, value]) { o in
        let go = o.gradData!
        query.withGradOrScratch { gq in key.withGradOrScratch { gk in value.withGradOrScratch { gv in
        go.withUnsafeBufferPointer { pgo in probs.withUnsafeBufferPointer { pp in
        query.data.withUnsafeBufferPointer { pq in key.data.withUnsafeBufferPointer { pk in value.data.withUnsafeBufferPointer { pv in
            let (gq, gk, gv, pgo, pp) = (gq.baseAddress!, gk.baseAddress!, gv.baseAddress!, pgo.baseAddress!, pp.baseAddress!)
            let (pq, pk, pv) = (pq.baseAddress!, pk.baseAddress!, pv.baseAddress!)
            Parallel.forRanges(b * heads, grain: headGrain) { range in
                var scratch = [Float](repeating: 0, count: tq * tk)
                scratch.withUnsafeMutableBufferPointer { ds in
                    let ds = ds.baseAddress!
                    for bh in range {
                        let (i, h) = (bh / heads, bh % heads)
                        let qo = i * tq * c + h * d, ko = i * tk * c + h * d
                        let p = pp + bh * tq * tk, dO = pgo + qo
                        // dV += Pᵀ dO
                        sgemm(transposeA: true, transposeB: false, m: tk, n: d, k: tq, a: p, lda: tk, b: dO, ldb: c,
                              beta: 1, c: gv + ko, ldc: c)
                        // dP = dO Vᵀ, then dS = P ∘ (dP − rowsum(dP ∘ P))
                        sgemm(transposeA: false, transposeB: true, m: tq, n: tk, k: d, a: dO, lda: c, b: pv + ko, ldb: c,
                              c: ds, ldc: tk)
                        for row in 0..<tq {
                            let pr = p + row * tk, dr = ds + row * tk
                            var dot: Float = 0
                            for j in 0..<tk { dot += pr[j] * dr[j] }
                            for j in 0..<tk { dr[j] = pr[j] * (dr[j] - dot) }
                        }
                        // dQ += scale · dS K,  dK += scale · dSᵀ Q
                        sgemm(transposeA: false, transposeB: false, m: tq, n: d, k: tk, alpha: alpha, a: ds, lda: tk,
                              b: pk + ko, ldb: c, beta: 1, c: gq + qo, ldc: c)
                        sgemm(transposeA: true, transposeB: false, m: tk, n: d, k: tq, alpha: alpha, a: ds, lda: tk,
                              b: pq + qo, ldb: c, beta: 1, c: gk + ko, ldc: c)
                    }
                }
            }
        } } } } } } } }
    }
}

/// Attention of one new query per row to keys and values held in place, without gradient: the decoding
/// step of a KV cache, which reads the cache where it lies instead of copying it into tensors.
///
/// - Parameters:
///   - query: the row's query `[H·D]` (any stride between rows is the caller's).
///   - keys, values: position t's `[H·D]` at `keys + t·stride`; positions `0..<count` are attended (causal:
///     the new position is the last of them).
///   - out: the row's output `[H·D]`.
public func singleQueryAttention(query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                 count: Int, stride: Int, heads: Int, headWidth d: Int, out: UnsafeMutablePointer<Float>) {
    let scale = 1 / sqrtf(Float(d))
    // One pass over the keys and one over the values, each position's heads together (sequential reads).
    withUnsafeTemporaryAllocation(of: Float.self, capacity: heads * count) { scores in
        let s = scores.baseAddress!                                    // [H, count]
        for t in 0..<count {
            let k = keys + t * stride
            for h in 0..<heads { s[h * count + t] = dot(query + h * d, k + h * d, d) * scale }
        }
        for h in 0..<heads {
            let row = s + h * count
            var m = -Float.infinity
            for t in 0..<count { m = Swift.max(m, row[t]) }
            var total: Float = 0
            for t in 0..<count { row[t] = fastExp(row[t] - m); total += row[t] }
            let inverse = 1 / total
            for t in 0..<count { row[t] *= inverse }
        }
        out.update(repeating: 0, count: heads * d)
        for t in 0..<count {
            let v = values + t * stride
            for h in 0..<heads {
                let (p, o, vh) = (s[h * count + t], out + h * d, v + h * d)
                for j in 0..<d { o[j] += p * vh[j] }
            }
        }
    }
}

/// `Σ a[i]·b[i]` over n values, eight lanes at a time.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        lanes += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var total = lanes.sum()
    while i < n { total += a[i] * b[i]; i += 1 }
    return total
}
