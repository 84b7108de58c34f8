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
    precondition(!(query === key || key === value || query === value), "attention: query, key and value must be distinct tensors")
    let shape = AttentionShape(batch: b, queries: tq, keys: tk, width: c, heads: heads, causal: causal, keyMask: keyMask, scale: scale)
    let (q, k, v) = (shape.operand(rows: tq, rowStride: c), shape.operand(rows: tk, rowStride: c), shape.operand(rows: tk, rowStride: c))
    var probs: [Float] = []
    let out = query.data.withUnsafeBufferPointer { pq in key.data.withUnsafeBufferPointer { pk in value.data.withUnsafeBufferPointer { pv in
        shape.forward(q: pq.baseAddress!, q, k: pk.baseAddress!, k, v: pv.baseAddress!, v, probs: &probs)
    } } }
    return Tensor.result(shape: [b, tq, c], data: out, inputs: [query, key, value]) { o in
        query.withGradOrScratch { gq in key.withGradOrScratch { gk in value.withGradOrScratch { gv in
        query.data.withUnsafeBufferPointer { pq in key.data.withUnsafeBufferPointer { pk in value.data.withUnsafeBufferPointer { pv in
            shape.backward(outputGrad: o.gradData!, probs: probs, q: pq.baseAddress!, gq: gq.baseAddress!, q,
                           k: pk.baseAddress!, gk: gk.baseAddress!, k, v: pv.baseAddress!, gv: gv.baseAddress!, v)
        } } } } } }
    }
}

/// Causal or bidirectional self-attention read straight from a fused projection `qkv: [B, T, 3·H·D]` (q | k | v
/// along the last axis, as `SelfAttention`'s `qkv` layer produces it): the same result as splitting it and
/// calling `scaledDotProductAttention`, without the three copies forward and their concatenation backward.
/// Returns `[B, T, H·D]`.
public func fusedSelfAttention(_ qkv: Tensor, heads: Int, causal: Bool, keyMask: [Float]? = nil) -> Tensor {
    precondition(qkv.rank == 3 && qkv.shape[2] % 3 == 0, "attention: fused q|k|v must be [B, T, 3·H·D], got \(qkv.shape)")
    let (b, t, c) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    let shape = AttentionShape(batch: b, queries: t, keys: t, width: c, heads: heads, causal: causal, keyMask: keyMask, scale: nil)
    let operand = shape.operand(rows: t, rowStride: 3 * c)
    var probs: [Float] = []
    let out = qkv.data.withUnsafeBufferPointer { p in
        shape.forward(q: p.baseAddress!, operand, k: p.baseAddress! + c, operand, v: p.baseAddress! + 2 * c, operand, probs: &probs)
    }
    return Tensor.result(shape: [b, t, c], data: out, inputs: [qkv]) { o in
        qkv.accumulateGrad { g in qkv.data.withUnsafeBufferPointer { p in
            let (g, p) = (g.baseAddress!, p.baseAddress!)
            shape.backward(outputGrad: o.gradData!, probs: probs, q: p, gq: g, operand, k: p + c, gk: g + c, operand,
                           v: p + 2 * c, gv: g + 2 * c, operand)
        } }
    }
}

/// The sizes of one multi-head attention and its two passes over operands laid out `[B, rows, …]`, each
/// head a column block of width D at a row stride (so q, k and v may be blocks of one wider tensor).
private struct AttentionShape {
    let batch: Int, queries: Int, keys: Int, width: Int, heads: Int
    let causal: Bool
    let keyMask: [Float]?
    let alpha: Float
    var headWidth: Int { width / heads }
    /// Heads go to the workers in groups of at least ~32k multiply-adds: a decoding step's tiny heads run inline.
    var headGrain: Int { max(1, 32_768 / max(1, queries * keys * headWidth)) }

    /// Where an operand's rows lie: batch item i's row r starts at `i·batchStride + r·rowStride`.
    struct Operand { let batchStride: Int, rowStride: Int }

    init(batch: Int, queries: Int, keys: Int, width: Int, heads: Int, causal: Bool, keyMask: [Float]?, scale: Float?) {
        precondition(width % heads == 0, "attention: width \(width) is not divisible by \(heads) heads")
        if let keyMask { precondition(keyMask.count == batch * keys, "attention: keyMask has \(keyMask.count) values, expected \(batch)×\(keys)") }
        (self.batch, self.queries, self.keys, self.width, self.heads) = (batch, queries, keys, width, heads)
        (self.causal, self.keyMask) = (causal, keyMask)
        alpha = scale ?? 1 / sqrtf(Float(width / heads))
    }

    func operand(rows: Int, rowStride: Int) -> Operand { Operand(batchStride: rows * rowStride, rowStride: rowStride) }

    /// Causal attention goes through the queries in blocks of 64, each block's products reaching only the keys
    /// its last query sees: at T = 256 that is 62.5% of the full products' work. Otherwise one block.
    var queryBlocks: [Range<Int>] {
        let size = causal ? 64 : Swift.max(queries, 1)
        return stride(from: 0, to: queries, by: size).map { $0..<Swift.min(queries, $0 + size) }
    }

    /// How many keys (from the first) the queries `rows` see between them.
    func visibleKeys(_ rows: Range<Int>) -> Int {
        causal ? Swift.min(keys, Swift.max(0, rows.upperBound + keys - queries)) : keys
    }

    /// Returns the output `[B, Tq, C]`; `probs` becomes `[B, H, Tq, Tk]`, kept for the backward pass.
    func forward(q pq: UnsafePointer<Float>, _ qo: Operand, k pk: UnsafePointer<Float>, _ ko: Operand,
                 v pv: UnsafePointer<Float>, _ vo: Operand, probs: inout [Float]) -> [Float] {
        let (b, tq, tk, c, d) = (batch, queries, keys, width, headWidth)
        let offset = tk - tq
        probs = [Float](repeating: 0, count: b * heads * tq * tk)
        var out = [Float](repeating: 0, count: b * tq * c)
        probs.withUnsafeMutableBufferPointer { pp in out.withUnsafeMutableBufferPointer { po in
            let (pp, po) = (pp.baseAddress!, po.baseAddress!)
            Parallel.forRanges(b * heads, grain: headGrain) { range in for bh in range {
                let (i, h) = (bh / heads, bh % heads)
                let q = pq + i * qo.batchStride + h * d, k = pk + i * ko.batchStride + h * d, v = pv + i * vo.batchStride + h * d
                for rows in queryBlocks {
                    let keysSeen = visibleKeys(rows)
                    guard keysSeen > 0 else { continue }
                    let p = pp + bh * tq * tk + rows.lowerBound * tk
                    // S = scale · Q Kᵀ  [rows, keysSeen]
                    sgemm(transposeA: false, transposeB: true, m: rows.count, n: keysSeen, k: d, alpha: alpha,
                          a: q + rows.lowerBound * qo.rowStride, lda: qo.rowStride, b: k, ldb: ko.rowStride, c: p, ldc: tk)
                    for (r, row) in rows.enumerated() {
                        let s = p + r * tk
                        let visible = causal ? Swift.min(tk, Swift.max(0, row + offset + 1)) : tk
                        var m = -Float.infinity
                        for j in 0..<visible where keyMask == nil || keyMask![i * tk + j] != 0 { m = Swift.max(m, s[j]) }
                        if m == -Float.infinity { for j in 0..<keysSeen { s[j] = 0 }; continue }
                        var total: Float = 0
                        if let keyMask {
                            for j in 0..<keysSeen {
                                let e = j < visible && keyMask[i * tk + j] != 0 ? fastExp(s[j] - m) : 0
                                s[j] = e
                                total += e
                            }
                        } else {
                            for j in 0..<visible { s[j] = fastExp(s[j] - m); total += s[j] }
                            for j in visible..<keysSeen { s[j] = 0 }
                        }
                        let inv = 1 / total
                        for j in 0..<keysSeen { s[j] *= inv }
                    }
                    // O = P V  [rows, D] into the head's column block
                    sgemm(transposeA: false, transposeB: false, m: rows.count, n: d, k: keysSeen, a: p, lda: tk, b: v, ldb: vo.rowStride,
                          c: po + (i * tq + rows.lowerBound) * c + h * d, ldc: c)
                }
            } }
        } }
        return out
    }

    /// Accumulates the gradients of q, k and v (same layouts as the inputs) from the output's gradient.
    func backward(outputGrad: [Float], probs: [Float],
                  q pq: UnsafePointer<Float>, gq: UnsafeMutablePointer<Float>, _ qo: Operand,
                  k pk: UnsafePointer<Float>, gk: UnsafeMutablePointer<Float>, _ ko: Operand,
                  v pv: UnsafePointer<Float>, gv: UnsafeMutablePointer<Float>, _ vo: Operand) {
        let (b, tq, tk, c, d) = (batch, queries, keys, width, headWidth)
        outputGrad.withUnsafeBufferPointer { pgo in probs.withUnsafeBufferPointer { pp in
            let (pgo, pp) = (pgo.baseAddress!, pp.baseAddress!)
            Parallel.forRanges(b * heads, grain: headGrain) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: tq * tk) { ds in
                    let ds = ds.baseAddress!
                    for bh in range {
                        let (i, h) = (bh / heads, bh % heads)
                        let qi = i * qo.batchStride + h * d, ki = i * ko.batchStride + h * d, vi = i * vo.batchStride + h * d
                        for rows in queryBlocks {
                            let keysSeen = visibleKeys(rows)
                            guard keysSeen > 0 else { continue }
                            let p = pp + bh * tq * tk + rows.lowerBound * tk, dO = pgo + (i * tq + rows.lowerBound) * c + h * d
                            let qBlock = qi + rows.lowerBound * qo.rowStride
                            // dV += Pᵀ dO
                            sgemm(transposeA: true, transposeB: false, m: keysSeen, n: d, k: rows.count, a: p, lda: tk, b: dO, ldb: c,
                                  beta: 1, c: gv + vi, ldc: vo.rowStride)
                            // dP = dO Vᵀ, then dS = P ∘ (dP − rowsum(dP ∘ P))
                            sgemm(transposeA: false, transposeB: true, m: rows.count, n: keysSeen, k: d, a: dO, lda: c, b: pv + vi,
                                  ldb: vo.rowStride, c: ds, ldc: tk)
                            for r in 0..<rows.count {
                                let pr = p + r * tk, dr = ds + r * tk
                                var dot: Float = 0
                                for j in 0..<keysSeen { dot += pr[j] * dr[j] }
                                for j in 0..<keysSeen { dr[j] = pr[j] * (dr[j] - dot) }
                            }
                            // dQ += scale · dS K,  dK += scale · dSᵀ Q
                            sgemm(transposeA: false, transposeB: false, m: rows.count, n: d, k: keysSeen, alpha: alpha, a: ds, lda: tk,
                                  b: pk + ki, ldb: ko.rowStride, beta: 1, c: gq + qBlock, ldc: qo.rowStride)
                            sgemm(transposeA: true, transposeB: false, m: keysSeen, n: d, k: rows.count, alpha: alpha, a: ds, lda: tk,
                                  b: pq + qBlock, ldb: qo.rowStride, beta: 1, c: gk + ki, ldc: ko.rowStride)
                        }
                    }
                }
            }
        } }
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
