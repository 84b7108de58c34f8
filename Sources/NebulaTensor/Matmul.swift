// Matrix products through BLAS: plain and batched `matmul`, and the fused `linear` layer op.

extension Tensor {
    /// Matrix product over the last two dimensions.
    ///
    /// - `[..., M, K] · [K, N]` → `[..., M, N]` (the right side is shared across the batch: one GEMM);
    /// - `[B..., M, K] · [B..., K, N]` → `[B..., M, N]` (batched, equal leading dimensions).
    ///
    /// `transposeA` / `transposeB` use the operand's last two dimensions transposed, through BLAS flags.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul: operands need rank ≥ 2, got \(shape) and \(other.shape)")
        let (ar, ac) = (shape[rank - 2], shape[rank - 1])
        let (br, bc) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        precondition(k == k2, "matmul: inner dimensions differ: \(shape)\(transposeA ? "ᵀ" : "") · \(other.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        let shared = batchB.isEmpty
        precondition(shared || batchA == batchB, "matmul: batch dimensions \(batchA) and \(batchB) differ")
        let batch = batchA.reduce(1, *)
        let a = self, b = other
        var out = [Float](repeating: 0, count: batch * m * n)
        if shared && !transposeA {
            // Fold the batch into M: one large GEMM.
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { po in
                        sgemm(
                            transposeA: false, transposeB: transposeB, m: batch * m, n: n, k: k,
                            a: pa.baseAddress!, lda: ac, b: pb.baseAddress!, ldb: bc, c: po.baseAddress!, ldc: n, parallel: true)
                    }
                }
            }
        } else {
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { po in
                        let (pa, pb, po) = (pa.baseAddress!, pb.baseAddress!, po.baseAddress!)
                        forEachBatchItem(batch) { i, parallel in
                            sgemm(
                                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                a: pa + i * ar * ac, lda: ac, b: pb + (shared ? 0 : i * br * bc), ldb: bc,
                                c: po + i * m * n, ldc: n, parallel: parallel)
                        }
                    }
                }
            }
        }
        return Tensor.result(shape: batchA + [m, n], data: out, inputs: [a, b]) { o in
            let go = o.gradData!
            go.withUnsafeBufferPointer { pgo in
                let pgo = pgo.baseAddress!
                // dA = dC · op(B)ᵀ (stored in A's layout), dB = op(A)ᵀ · dC (stored in B's layout).
                a.accumulateGrad { pga in
                    b.data.withUnsafeBufferPointer { pb in
                        let (pga, pb) = (pga.baseAddress!, pb.baseAddress!)
                        forEachBatchItem(shared && !transposeA ? 1 : batch) { i, parallel in
                            let rows = shared && !transposeA ? batch * m : m
                            let gc = pgo + i * m * n, bi = pb + (shared ? 0 : i * br * bc), ga = pga + i * ar * ac
                            if transposeA {  // A is K×M: dA = op(B) · dCᵀ
                                sgemm(
                                    transposeA: transposeB, transposeB: true, m: k, n: m, k: n,
                                    a: bi, lda: bc, b: gc, ldb: n, beta: 1, c: ga, ldc: ac, parallel: parallel)
                            } else {
                                sgemm(
                                    transposeA: false, transposeB: !transposeB, m: rows, n: k, k: n,
                                    a: gc, lda: n, b: bi, ldb: bc, beta: 1, c: ga, ldc: ac, parallel: parallel)
                            }
                        }
                    }
                }
                b.accumulateGrad { pgb in
                    a.data.withUnsafeBufferPointer { pa in
                        let (pgb, pa) = (pgb.baseAddress!, pa.baseAddress!)
                        if shared {
                            // Sum over the batch; serial, since every item writes the same gradient.
                            let folded = !transposeA
                            for i in 0..<(folded ? 1 : batch) {
                                let rows = folded ? batch * m : m
                                let ai = pa + i * ar * ac, gc = pgo + i * m * n
                                accumulateRightGrad(
                                    ai, lda: ac, transposeA: transposeA, gc, m: rows, n: n, k: k,
                                    into: pgb, ldb: bc, transposeB: transposeB, parallel: true)
                            }
                        } else {
                            forEachBatchItem(batch) { i, parallel in
                                accumulateRightGrad(
                                    pa + i * ar * ac, lda: ac, transposeA: transposeA, pgo + i * m * n,
                                    m: m, n: n, k: k, into: pgb + i * br * bc, ldb: bc, transposeB: transposeB,
                                    parallel: parallel)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs one GEMM per batch item: items spread over the workers when there are enough of them, otherwise
/// one after another with each GEMM split across the workers (`parallel` tells the body which).
@inline(__always)
private func forEachBatchItem(_ batch: Int, _ body: (Int, Bool) -> Void) {
    if batch >= Parallel.workerCount && batch > 1 {
        Parallel.forEach(batch) { body($0, false) }
    } else {
        for i in 0..<batch { body(i, true) }
    }
}

/// dB += op(A)ᵀ · dC, written in B's own layout (transposed when B was used transposed).
@inline(__always)
private func accumulateRightGrad(
    _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool, _ gc: UnsafePointer<Float>, m: Int, n: Int, k: Int,
    into gb: UnsafeMutablePointer<Float>, ldb: Int, transposeB: Bool, parallel: Bool
) {
    if transposeB {  // B is N×K: dB = dCᵀ · op(A)
        sgemm(
            transposeA: true, transposeB: transposeA, m: n, n: k, k: m, a: gc, lda: n, b: a, ldb: lda, beta: 1, c: gb, ldc: ldb,
            parallel: parallel)
    } else {  // B is K×N: dB = op(A)ᵀ · dC
        sgemm(
            transposeA: !transposeA, transposeB: false, m: k, n: n, k: m, a: a, lda: lda, b: gc, ldb: n, beta: 1, c: gb, ldc: ldb,
            parallel: parallel)
    }
}

/// The fused fully connected layer: `y = x · Wᵀ + b` for `x: [..., in]`, `weight: [out, in]` (PyTorch's
/// layout), `bias: [out]`. One GEMM forward; backward computes dx, dW and db with two GEMMs and a column sum,
/// accumulating straight into the gradient buffers.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    precondition(x.shape.last == inFeatures, "linear: input \(x.shape) does not end in \(inFeatures) features (weight \(weight.shape))")
    if let bias { precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) should be [\(outFeatures)]") }
    let rows = x.count / inFeatures
    var out = [Float](unsafeUninitializedCapacity: rows * outFeatures) { buffer, initialized in
        if let bias {
            bias.data.withUnsafeBufferPointer { pb in
                for r in 0..<rows { (buffer.baseAddress! + r * outFeatures).update(from: pb.baseAddress!, count: outFeatures) }
            }
        }
        initialized = rows * outFeatures
    }
    // bf16 inference rounds a weight once, not at every product (`.bf16` is only set where BF16Matmul exists).
    let rounded =
        MatmulPrecision.current == .bf16 && !GradMode.isEnabled && min(outFeatures, inFeatures) >= 16
        ? weight.roundedToBFloat16() : nil
    x.data.withUnsafeBufferPointer { px in
        weight.data.withUnsafeBufferPointer { pw in
            out.withUnsafeMutableBufferPointer { po in
                if let rounded {
                    rounded.withUnsafeBufferPointer { pr in
                        BF16Matmul.shared!.gemm(
                            transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                            a: px.baseAddress!, lda: inFeatures, b: pw.baseAddress!, ldb: inFeatures, roundedB: pr.baseAddress!,
                            accumulate: bias != nil, c: po.baseAddress!, ldc: outFeatures)
                    }
                } else {
                    sgemm(
                        transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                        a: px.baseAddress!, lda: inFeatures, b: pw.baseAddress!, ldb: inFeatures,
                        beta: bias == nil ? 0 : 1, c: po.baseAddress!, ldc: outFeatures, parallel: true)
                }
            }
        }
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result(shape: Array(x.shape.dropLast()) + [outFeatures], data: out, inputs: inputs) { o in
        o.gradData!.withUnsafeBufferPointer { pgo in
            let gy = pgo.baseAddress!
            x.accumulateGrad { pgx in
                weight.data.withUnsafeBufferPointer { pw in  // dx = dy · W
                    sgemm(
                        transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
                        a: gy, lda: outFeatures, b: pw.baseAddress!, ldb: inFeatures, beta: 1, c: pgx.baseAddress!, ldc: inFeatures,
                        parallel: true)
                }
            }
            weight.accumulateGrad { pgw in
                x.data.withUnsafeBufferPointer { px in  // dW = dyᵀ · x
                    sgemm(
                        transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
                        a: gy, lda: outFeatures, b: px.baseAddress!, ldb: inFeatures, beta: 1, c: pgw.baseAddress!, ldc: inFeatures,
                        parallel: true)
                }
            }
            bias?.accumulateGrad { pgb in  // db = Σ_rows dy
                let pgb = pgb.baseAddress!
                for r in 0..<rows {
                    let row = gy + r * outFeatures
                    for j in 0..<outFeatures { pgb[j] += row[j] }
                }
            }
        }
    }
}
