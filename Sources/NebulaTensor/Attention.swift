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
    precondition(
        query.rank == 3 && key.rank == 3 && value.rank == 3,
        "attention: query/key/value must be [B, T, H·D], got \(query.shape), \(key.shape), \(value.shape)")
    let (b, tq, c) = (query.shape[0], query.shape[1], query.shape[2])
    let tk = key.shape[1]
    precondition(
        key.shape == [b, tk, c] && value.shape == [b, tk, c],
        "attention: key \(key.shape) and value \(value.shape) must be [\(b), Tk, \(c)] to match query \(query.shape)")
    precondition(!(query === key || key === value || query === value), "attention: query, key and value must be distinct tensors")
    let shape = AttentionShape(batch: b, queries: tq, keys: tk, width: c, heads: heads, causal: causal, keyMask: keyMask, scale: scale)
    let (q, k, v) = (shape.operand(rows: tq, rowStride: c), shape.operand(rows: tk, rowStride: c), shape.operand(rows: tk, rowStride: c))
    var logSumExp: [Float] = []
    let out = query.data.withUnsafeBufferPointer { pq in
        key.data.withUnsafeBufferPointer { pk in
            value.data.withUnsafeBufferPointer { pv in
                shape.forward(q: pq.baseAddress!, q, k: pk.baseAddress!, k, v: pv.baseAddress!, v, logSumExp: &logSumExp)
            }
        }
    }
    return Tensor.result(shape: [b, tq, c], data: out, inputs: [query, key, value]) { o in
        query.withGradOrScratch { gq in
            key.withGradOrScratch { gk in
                value.withGradOrScratch { gv in
                    query.data.withUnsafeBufferPointer { pq in
                        key.data.withUnsafeBufferPointer { pk in
                            value.data.withUnsafeBufferPointer { pv in
                                shape.backward(
                                    output: o.data, outputGrad: o.gradData!, logSumExp: logSumExp, q: pq.baseAddress!, gq: gq.baseAddress!,
                                    q,
                                    k: pk.baseAddress!, gk: gk.baseAddress!, k, v: pv.baseAddress!, gv: gv.baseAddress!, v)
                            }
                        }
                    }
                }
            }
        }
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
    var logSumExp: [Float] = []
    let out = qkv.data.withUnsafeBufferPointer { p in
        shape.forward(q: p.baseAddress!, operand, k: p.baseAddress! + c, operand, v: p.baseAddress! + 2 * c, operand, logSumExp: &logSumExp)
    }
    return Tensor.result(shape: [b, t, c], data: out, inputs: [qkv]) { o in
        qkv.accumulateGrad { g in
            qkv.data.withUnsafeBufferPointer { p in
                let (g, p) = (g.baseAddress!, p.baseAddress!)
                shape.backward(
                    output: o.data, outputGrad: o.gradData!, logSumExp: logSumExp, q: p, gq: g, operand, k: p + c, gk: g + c, operand,
                    v: p + 2 * c, gv: g + 2 * c, operand)
            }
        }
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
        if let keyMask {
            precondition(keyMask.count == batch * keys, "attention: keyMask has \(keyMask.count) values, expected \(batch)×\(keys)")
        }
        (self.batch, self.queries, self.keys, self.width, self.heads) = (batch, queries, keys, width, heads)
        (self.causal, self.keyMask) = (causal, keyMask)
        alpha = scale ?? 1 / sqrtf(Float(width / heads))
    }

    func operand(rows: Int, rowStride: Int) -> Operand { Operand(batchStride: rows * rowStride, rowStride: rowStride) }

    /// Causal attention goes through the queries in blocks of 64, each block's products reaching only the keys
    /// its last query sees: at T = 256 that is 62.5% of the full products' work. Otherwise one block of up to
    /// 64 queries at a time as well, so every worker's scratch stays `[64, keyTile]`.
    static let queryBlock = 64
    /// Keys are visited in tiles of this many with an online softmax (a running maximum and sum per query,
    /// the partial output rescaled when the maximum grows), so no `[Tq, Tk]` matrix is ever held: memory
    /// is linear in the context. Up to 256 keys this is one tile and the plain softmax.
    static let keyTile = 256

    var queryBlocks: [Range<Int>] {
        stride(from: 0, to: queries, by: Self.queryBlock).map { $0..<Swift.min(queries, $0 + Self.queryBlock) }
    }

    /// How many keys (from the first) the queries `rows` see between them.
    func visibleKeys(_ rows: Range<Int>) -> Int {
        causal ? Swift.min(keys, Swift.max(0, rows.upperBound + keys - queries)) : keys
    }

    /// How many keys (from the first) query `row` sees.
    func visibleKeys(row: Int) -> Int { causal ? Swift.min(keys, Swift.max(0, row + keys - queries + 1)) : keys }

    /// Replaces the tile's scores `s[0..<count]` (keys `first…`) of query `row` in batch item `item` by
    /// `exp(s − shift)` where the key is visible and not masked, 0 elsewhere; returns their sum.
    @inline(__always)
    func exponentiate(_ s: UnsafeMutablePointer<Float>, count: Int, first: Int, row: Int, item: Int, shift: Float) -> Float {
        let visible = Swift.min(count, Swift.max(0, visibleKeys(row: row) - first))
        var total: Float = 0
        if let keyMask {
            let base = item * keys + first
            for j in 0..<count {
                let e = j < visible && keyMask[base + j] != 0 ? fastExp(s[j] - shift) : 0
                s[j] = e
                total += e
            }
        } else {
            for j in 0..<visible { s[j] = fastExp(s[j] - shift); total += s[j] }
            for j in visible..<count { s[j] = 0 }
        }
        return total
    }

    /// The largest score among the visible, unmasked keys of the tile (−∞ when there is none).
    @inline(__always)
    func visibleMaximum(_ s: UnsafeMutablePointer<Float>, count: Int, first: Int, row: Int, item: Int) -> Float {
        let visible = Swift.min(count, Swift.max(0, visibleKeys(row: row) - first))
        var m = -Float.infinity
        for j in 0..<visible where keyMask == nil || keyMask![item * keys + first + j] != 0 { m = Swift.max(m, s[j]) }
        return m
    }

    /// Returns the output `[B, Tq, C]`; `logSumExp` becomes `[B, H, Tq]` (log of each query's softmax
    /// denominator, scores included; −∞ for a query that sees no key), kept for the backward pass.
    func forward(
        q pq: UnsafePointer<Float>, _ qo: Operand, k pk: UnsafePointer<Float>, _ ko: Operand,
        v pv: UnsafePointer<Float>, _ vo: Operand, logSumExp: inout [Float]
    ) -> [Float] {
        let (b, tq, c, d, tile) = (batch, queries, width, headWidth, Self.keyTile)
        logSumExp = [Float](repeating: -.infinity, count: b * heads * tq)
        var out = [Float](repeating: 0, count: b * tq * c)
        logSumExp.withUnsafeMutableBufferPointer { pl in
            out.withUnsafeMutableBufferPointer { po in
                let (pl, po) = (pl.baseAddress!, po.baseAddress!)
                Parallel.forRanges(b * heads, grain: headGrain) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.queryBlock * (tile + 2)) { scratch in
                        let s = scratch.baseAddress!  // [64, tile] scores
                        let (maximum, total) = (s + Self.queryBlock * tile, s + Self.queryBlock * (tile + 1))  // [64] each
                        for bh in range {
                            let (i, h) = (bh / heads, bh % heads)
                            let q = pq + i * qo.batchStride + h * d, k = pk + i * ko.batchStride + h * d,
                                v = pv + i * vo.batchStride + h * d
                            for rows in queryBlocks {
                                let keysSeen = visibleKeys(rows)
                                let o = po + (i * tq + rows.lowerBound) * c + h * d  // [rows, D] at stride C
                                maximum.update(repeating: -.infinity, count: rows.count)
                                total.update(repeating: 0, count: rows.count)
                                for first in stride(from: 0, to: keysSeen, by: tile) {
                                    let n = Swift.min(tile, keysSeen - first)
                                    // S = scale · Q Kᵀ  [rows, n]
                                    sgemm(
                                        transposeA: false, transposeB: true, m: rows.count, n: n, k: d, alpha: alpha,
                                        a: q + rows.lowerBound * qo.rowStride, lda: qo.rowStride, b: k + first * ko.rowStride,
                                        ldb: ko.rowStride, c: s, ldc: tile)
                                    for (r, row) in rows.enumerated() {
                                        let sr = s + r * tile
                                        let m = Swift.max(maximum[r], visibleMaximum(sr, count: n, first: first, row: row, item: i))
                                        guard m > -.infinity else { for j in 0..<n { sr[j] = 0 }; continue }
                                        if maximum[r] > -.infinity && maximum[r] < m {  // rescale what came before
                                            let shrink = fastExp(maximum[r] - m)
                                            total[r] *= shrink
                                            for e in 0..<d { o[r * c + e] *= shrink }
                                        }
                                        maximum[r] = m
                                        total[r] += exponentiate(sr, count: n, first: first, row: row, item: i, shift: m)
                                    }
                                    // O += exp(S − m) V  [rows, D]
                                    sgemm(
                                        transposeA: false, transposeB: false, m: rows.count, n: d, k: n, a: s, lda: tile,
                                        b: v + first * vo.rowStride, ldb: vo.rowStride, beta: 1, c: o, ldc: c)
                                }
                                for (r, row) in rows.enumerated() where total[r] > 0 {
                                    let inverse = 1 / total[r]
                                    for e in 0..<d { o[r * c + e] *= inverse }
                                    pl[bh * tq + row] = maximum[r] + logf(total[r])
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Accumulates the gradients of q, k and v (same layouts as the inputs) from the output `[B, Tq, C]`, its
    /// gradient and the forward pass's `logSumExp`; the probabilities are recomputed tile by tile.
    func backward(
        output: [Float], outputGrad: [Float], logSumExp: [Float],
        q pq: UnsafePointer<Float>, gq: UnsafeMutablePointer<Float>, _ qo: Operand,
        k pk: UnsafePointer<Float>, gk: UnsafeMutablePointer<Float>, _ ko: Operand,
        v pv: UnsafePointer<Float>, gv: UnsafeMutablePointer<Float>, _ vo: Operand
    ) {
        let (b, tq, c, d, tile) = (batch, queries, width, headWidth, Self.keyTile)
        output.withUnsafeBufferPointer { pout in
            outputGrad.withUnsafeBufferPointer { pgo in
                logSumExp.withUnsafeBufferPointer { pl in
                    let (pout, pgo, pl) = (pout.baseAddress!, pgo.baseAddress!, pl.baseAddress!)
                    Parallel.forRanges(b * heads, grain: headGrain) { range in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.queryBlock * (2 * tile + 1)) { scratch in
                            let (p, ds, delta) = (
                                scratch.baseAddress!, scratch.baseAddress! + Self.queryBlock * tile,
                                scratch.baseAddress! + 2 * Self.queryBlock * tile
                            )  // [64, tile], [64, tile], [64]
                            for bh in range {
                                let (i, h) = (bh / heads, bh % heads)
                                let qi = i * qo.batchStride + h * d, ki = i * ko.batchStride + h * d, vi = i * vo.batchStride + h * d
                                for rows in queryBlocks {
                                    let keysSeen = visibleKeys(rows)
                                    let dO = pgo + (i * tq + rows.lowerBound) * c + h * d, o = pout + (i * tq + rows.lowerBound) * c + h * d
                                    let qBlock = qi + rows.lowerBound * qo.rowStride
                                    // rowsum(dP ∘ P) = rowsum(dO ∘ O) per query
                                    for r in 0..<rows.count { delta[r] = dot(dO + r * c, o + r * c, d) }
                                    for first in stride(from: 0, to: keysSeen, by: tile) {
                                        let n = Swift.min(tile, keysSeen - first)
                                        // P = exp(scale · Q Kᵀ − logSumExp)  [rows, n]
                                        sgemm(
                                            transposeA: false, transposeB: true, m: rows.count, n: n, k: d, alpha: alpha, a: pq + qBlock,
                                            lda: qo.rowStride, b: pk + ki + first * ko.rowStride, ldb: ko.rowStride, c: p, ldc: tile)
                                        for (r, row) in rows.enumerated() {
                                            let lse = pl[bh * tq + row]
                                            if lse == -.infinity {
                                                for j in 0..<n { p[r * tile + j] = 0 }
                                            } else {
                                                _ = exponentiate(p + r * tile, count: n, first: first, row: row, item: i, shift: lse)
                                            }
                                        }
                                        // dV += Pᵀ dO
                                        sgemm(
                                            transposeA: true, transposeB: false, m: n, n: d, k: rows.count, a: p, lda: tile, b: dO, ldb: c,
                                            beta: 1, c: gv + vi + first * vo.rowStride, ldc: vo.rowStride)
                                        // dP = dO Vᵀ, then dS = P ∘ (dP − delta)
                                        sgemm(
                                            transposeA: false, transposeB: true, m: rows.count, n: n, k: d, a: dO, lda: c,
                                            b: pv + vi + first * vo.rowStride, ldb: vo.rowStride, c: ds, ldc: tile)
                                        for r in 0..<rows.count {
                                            let (pr, dr, dl) = (p + r * tile, ds + r * tile, delta[r])
                                            for j in 0..<n { dr[j] = pr[j] * (dr[j] - dl) }
                                        }
                                        // dQ += scale · dS K,  dK += scale · dSᵀ Q
                                        sgemm(
                                            transposeA: false, transposeB: false, m: rows.count, n: d, k: n, alpha: alpha, a: ds, lda: tile,
                                            b: pk + ki + first * ko.rowStride, ldb: ko.rowStride, beta: 1, c: gq + qBlock, ldc: qo.rowStride
                                        )
                                        sgemm(
                                            transposeA: true, transposeB: false, m: n, n: d, k: rows.count, alpha: alpha, a: ds, lda: tile,
                                            b: pq + qBlock, ldb: qo.rowStride, beta: 1, c: gk + ki + first * ko.rowStride, ldc: ko.rowStride
                                        )
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
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
public func singleQueryAttention(
    query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    count: Int, stride: Int, heads: Int, headWidth d: Int, out: UnsafeMutablePointer<Float>
) {
    let scale = 1 / sqrtf(Float(d))
    // One pass over the keys and one over the values, each position's heads together (sequential reads).
    withUnsafeTemporaryAllocation(of: Float.self, capacity: heads * count) { scores in
        let s = scores.baseAddress!  // [H, count]
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
