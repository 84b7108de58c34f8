import XCTest
@testable import NebulaTensor

final class BF16MatmulTests: XCTestCase {
    /// The nearest bfloat16 (ties to even), found by comparing the two truncations around x.
    func nearestBFloat16(_ x: Float) -> Double {
        let low = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
        let high = Float(bitPattern: (x.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
        let (dLow, dHigh) = (abs(Double(x) - Double(low)), abs(Double(high) - Double(x)))
        if dLow != dHigh { return Double(dLow < dHigh ? low : high) }
        return Double((low.bitPattern >> 16) & 1 == 0 ? low : high)
    }

    /// bf16 products equal the exact product of the operands rounded to bfloat16 (to fp32 accumulation
    /// error), for every transpose, a leading dimension wider than the matrix, split and unsplit shapes, and
    /// accumulation into C — and differ from the fp32 product by the rounding.
    func testProductsOfRoundedOperandsInEveryLayout() throws {
        if let reason = MatmulPrecision.bf16Unavailable { throw XCTSkip("bf16 unavailable: \(reason)") }
        var rng = SeededGenerator(seed: 11)
        ExecutionContext(precision: .bf16).run {
            for (m, n, k) in [(16, 24, 40), (130, 70, 33), (48, 300, 64)] {
                for transposeA in [false, true] {
                    for transposeB in [false, true] {
                        for accumulate in [false, true] {
                            let (aRows, aColumns) = transposeA ? (k, m) : (m, k), (bRows, bColumns) = transposeB ? (n, k) : (k, n)
                            let (lda, ldb, ldc) = (aColumns + 3, bColumns + 5, n + 2)
                            let a = (0..<(aRows * lda)).map { _ in rng.nextGaussian() }
                            let b = (0..<(bRows * ldb)).map { _ in rng.nextGaussian() }
                            let c0 = (0..<(m * ldc)).map { _ in rng.nextGaussian() }
                            var c = c0
                            a.withUnsafeBufferPointer { pa in
                                b.withUnsafeBufferPointer { pb in
                                    c.withUnsafeMutableBufferPointer { pc in
                                        sgemm(
                                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                                            b: pb.baseAddress!, ldb: ldb, beta: accumulate ? 1 : 0, c: pc.baseAddress!, ldc: ldc,
                                            parallel: true)
                                    }
                                }
                            }
                            var maxError = 0.0, maxRounding = 0.0
                            for i in 0..<m {
                                for j in 0..<n {
                                    var rounded = accumulate ? Double(c0[i * ldc + j]) : 0, exact = rounded
                                    for p in 0..<k {
                                        let x = transposeA ? a[p * lda + i] : a[i * lda + p],
                                            y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                                        rounded += nearestBFloat16(x) * nearestBFloat16(y)
                                        exact += Double(x) * Double(y)
                                    }
                                    maxError = max(maxError, abs(Double(c[i * ldc + j]) - rounded))
                                    maxRounding = max(maxRounding, abs(exact - rounded))
                                }
                                for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding of C untouched") }
                            }
                            let label = "\(m)×\(n)×\(k) transposeA \(transposeA) transposeB \(transposeB) accumulate \(accumulate)"
                            XCTAssertLessThan(maxError, 1e-4, label)
                            XCTAssertGreaterThan(maxRounding, 1e-2, label + ": the operands were rounded")
                        }
                    }
                }
            }
        }
    }
}
