#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// One-time engine set-up, run before the first GEMM:
/// - Nebula owns the threading: BLAS runs single-threaded and large products are split across workers
///   here, so a GEMM issued inside a parallel loop (one attention head per worker) never oversubscribes
///   the cores or contends for BLAS's own thread pool.
/// - glibc's allocator keeps freed activation buffers for reuse instead of returning them to the kernel
///   with `munmap` and taking page faults to map them again on the next step.
private let singleThreadedBLAS: Void = {
    #if !canImport(Accelerate)
    openblas_set_num_threads(1)
    #endif
    #if os(Linux)
    _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
    _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    #endif
}()

/// Products below this many multiply-adds run on one thread.
private let parallelGEMMThreshold = 1 << 18

/// Single-precision GEMM on row-major matrices: `C = alpha · op(A) · op(B) + beta · C`, where `op(A)` is
/// `M×K` and `op(B)` is `K×N`. Transposes are BLAS flags, never copies; leading dimensions let the
/// caller address a column block of a wider matrix (one attention head inside `[T, H·D]`).
///
/// With `parallel`, a large product is split into row (or column) blocks of C, one per worker; leave it
/// off when calling from inside a parallel loop.
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = false
) {
    _ = singleThreadedBLAS
    guard m > 0 && n > 0 else { return }
    let workers = Parallel.workerCount
    guard parallel && workers > 1 && m * n * k >= parallelGEMMThreshold && max(m, n) >= 2 * workers else {
        blasGEMM(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    if m >= n { // split rows of C (and of op(A))
        Parallel.forRanges(m, grain: 1) { r in
            let aBlock = transposeA ? a + r.lowerBound : a + r.lowerBound * lda
            blasGEMM(transposeA, transposeB, r.count, n, k, alpha, aBlock, lda, b, ldb, beta, c + r.lowerBound * ldc, ldc)
        }
    } else {    // split columns of C (and of op(B))
        Parallel.forRanges(n, grain: 1) { r in
            let bBlock = transposeB ? b + r.lowerBound * ldb : b + r.lowerBound
            blasGEMM(transposeA, transposeB, m, r.count, k, alpha, a, lda, bBlock, ldb, beta, c + r.lowerBound, ldc)
        }
    }
}

@inline(__always)
private func blasGEMM(
    _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    guard k > 0 else { // no products to add: C = beta · C
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Sets how many threads BLAS itself uses (OpenBLAS only). Nebula keeps it at 1; the benchmark raises it
/// to measure raw BLAS with its own threading.
public func setBLASThreads(_ n: Int) {
    _ = singleThreadedBLAS
    #if !canImport(Accelerate)
    openblas_set_num_threads(Int32(n))
    #endif
}
