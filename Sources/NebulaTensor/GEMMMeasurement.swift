import Dispatch
import Foundation

/// Median seconds per call of `body` over repeated calls filling about `seconds` (after one warm-up call).
public func medianSeconds(over seconds: Double, _ body: () -> Void) -> Double {
    body()
    var samples: [Double] = []
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    } while Date() < deadline && samples.count < 1000
    return samples.sorted()[samples.count / 2]
}

extension GEMMBackend {
    /// GFLOP/s of `C = op(A) · op(B)` at `m×n×k` on this backend, the median over about `seconds`: through
    /// Nebula's ``sgemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:parallel:)`` split over its
    /// workers, or, given `libraryThreads`, as one library call on that many of the library's own threads.
    public func gigaflops(
        m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
        libraryThreads: Int? = nil, seconds: Double
    ) -> Double {
        let a = (0..<(m * k)).map { Float($0 % 17) / 17 - 0.5 }, b = (0..<(k * n)).map { Float($0 % 13) / 13 - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        let (lda, ldb) = (transposeA ? m : k, transposeB ? k : n)
        var context = ExecutionContext.current
        context.gemmBackend = self
        if let libraryThreads { setLibraryThreads(libraryThreads) }
        defer { if libraryThreads != nil { setLibraryThreads(1) } }
        let time = context.run {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        let (pa, pb, pc) = (pa.baseAddress!, pb.baseAddress!, pc.baseAddress!)
                        return medianSeconds(over: seconds) {
                            if libraryThreads == nil {
                                sgemm(
                                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: pa, lda: lda, b: pb, ldb: ldb,
                                    c: pc, ldc: n, parallel: true)
                            } else {
                                gemm(transposeA, transposeB, m, n, k, 1, pa, lda, pb, ldb, 0, pc, n)
                            }
                        }
                    }
                }
            }
        }
        return 2 * Double(m * n * k) / time / 1e9
    }
}
