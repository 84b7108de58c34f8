#if os(Linux)
    import CBLAS  // mallopt
#endif

/// Tunes glibc's allocator for training and inference (a process-wide setting, so a program calls it once at
/// start, as `nebula` does): freed activation buffers are kept for reuse instead of being returned to the kernel
/// with `munmap` and mapped again, with page faults, on the next step. Does nothing off Linux.
public func tuneAllocatorForTensors() {
    #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    #endif
}

/// Products below this many multiply-adds run on one thread.
private let parallelGEMMThreshold = 1 << 18

/// Single-precision GEMM on row-major matrices: `C = alpha · op(A) · op(B) + beta · C`, where `op(A)` is
/// `M×K` and `op(B)` is `K×N`, run by ``GEMMBackend/current``. Transposes are library flags, never copies;
/// leading dimensions let the caller address a column block of a wider matrix (one attention head inside
/// `[T, H·D]`).
///
/// With ``MatmulPrecision/current`` at `.bf16`, the products that may be split (`parallel`, the linear layers'
/// and `matmul`'s) run with bfloat16 operands when every dimension is at least 16.
///
/// Nebula owns the threading: the library runs each call on one thread, and with `parallel` a large product
/// is split into row (or column) blocks of C, one per worker. So a GEMM issued inside a parallel loop (one
/// attention head per worker; leave `parallel` off there) never oversubscribes the cores or contends for
/// the library's own thread pool.
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = false
) {
    guard m > 0 && n > 0 else { return }
    guard k > 0 else {  // no products to add: C = beta · C
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    if parallel && MatmulPrecision.current == .bf16 && alpha == 1 && (beta == 0 || beta == 1) && min(m, n, k) >= 16,
        let bf16 = BF16Matmul.shared
    {
        bf16.gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
            accumulate: beta == 1, c: c, ldc: ldc)
        return
    }
    let backend = GEMMBackend.current
    let workers = Parallel.workerCount
    guard parallel && workers > 1 && m * n * k >= parallelGEMMThreshold && max(m, n) >= 2 * workers else {
        backend.gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    if m >= n {  // split rows of C (and of op(A))
        Parallel.forRanges(m, grain: 1) { r in
            let aBlock = transposeA ? a + r.lowerBound : a + r.lowerBound * lda
            backend.gemm(transposeA, transposeB, r.count, n, k, alpha, aBlock, lda, b, ldb, beta, c + r.lowerBound * ldc, ldc)
        }
    } else {  // split columns of C (and of op(B))
        Parallel.forRanges(n, grain: 1) { r in
            let bBlock = transposeB ? b + r.lowerBound * ldb : b + r.lowerBound
            backend.gemm(transposeA, transposeB, m, r.count, k, alpha, a, lda, bBlock, ldb, beta, c + r.lowerBound, ldc)
        }
    }
}
