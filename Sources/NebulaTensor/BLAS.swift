#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Single-precision GEMM on row-major matrices: `C = alpha · op(A) · op(B) + beta · C`, where `op(A)` is
/// `M×K` and `op(B)` is `K×N`. Transposes are BLAS flags, never copies; leading dimensions let the
/// caller address a column block of a wider matrix (one attention head inside `[T, H·D]`).
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0 && n > 0 else { return }
    guard k > 0 else {
        // No products to add: C = beta · C.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Sets how many threads BLAS uses (OpenBLAS only; Accelerate manages its own).
public func setBLASThreads(_ n: Int) {
    #if !canImport(Accelerate)
    openblas_set_num_threads(Int32(n))
    #endif
}
