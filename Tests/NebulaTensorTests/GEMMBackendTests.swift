import XCTest
@testable import NebulaTensor

/// Every available GEMM backend against a naive triple loop and against each other; the OpenBLAS kernel
/// advice; `NEBULA_BLAS` values.
final class GEMMBackendTests: XCTestCase {
    /// One product: `C = alpha · op(A) · op(B) + beta · C` with padded leading dimensions (each matrix is a
    /// column block of a wider one), so the padding must come out untouched.
    struct Product {
        let m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, alpha: Float, beta: Float, parallel: Bool
        var lda: Int { (transposeA ? m : k) + 3 }
        var ldb: Int { (transposeB ? k : n) + 2 }
        var ldc: Int { n + 1 }

        /// Random A, B and initial C.
        func operands() -> (a: [Float], b: [Float], c: [Float]) {
            var rng = SeededGenerator(seed: UInt64(m * 10_000 + n * 100 + k))
            func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &rng) } }
            return (random(max(1, (transposeA ? k : m) * lda)), random(max(1, (transposeB ? n : k) * ldb)), random(m * ldc))
        }

        /// C after the product, through Nebula's `sgemm` on the current backend.
        func run() -> [Float] {
            var (a, b, c) = operands()
            sgemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: &a, lda: lda,
                b: &b, ldb: ldb, beta: beta, c: &c, ldc: ldc, parallel: parallel)
            return c
        }

        /// C after the product, by the definition in double precision.
        func reference() -> [Float] {
            var (a, b, c) = operands()
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                        let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                        sum += Double(x) * Double(y)
                    }
                    c[i * ldc + j] = Float(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])))
                }
            }
            return c
        }
    }

    /// Odd and tiny shapes, an empty inner dimension, and products large enough for `parallel` to split them
    /// by rows (m ≥ n) and by columns; every transpose combination, plain and accumulating.
    static let products: [Product] = {
        var products: [Product] = []
        for (m, n, k) in [(1, 1, 1), (7, 13, 5), (5, 3, 0), (64, 48, 33), (300, 200, 100), (40, 600, 50)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1)] {
                        for parallel in [false, true] {
                            products.append(
                                Product(
                                    m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                    alpha: alpha, beta: beta, parallel: parallel))
                        }
                    }
                }
            }
        }
        return products
    }()

    func maxRelativeError(_ x: [Float], _ y: [Float]) -> Float {
        zip(x, y).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    }

    func testEveryBackendMatchesNaiveLoopsAndTheOthers() {
        let references = Self.products.map { $0.reference() }
        var results: [[[Float]]] = []
        for backend in GEMMBackend.available {
            let outputs = ExecutionContext(gemmBackend: backend).run { Self.products.map { $0.run() } }
            for (product, (output, reference)) in zip(Self.products, zip(outputs, references)) {
                XCTAssertLessThanOrEqual(maxRelativeError(output, reference), 1e-4, "\(backend) \(product)")
            }
            results.append(outputs)
        }
        for (backend, outputs) in zip(GEMMBackend.available, results).dropFirst() {
            for (product, (output, first)) in zip(Self.products, zip(outputs, results[0])) {
                XCTAssertLessThanOrEqual(maxRelativeError(output, first), 1e-5, "\(backend) vs \(GEMMBackend.available[0]) \(product)")
            }
        }
    }

    func testLinuxX86UsesOneDNNWhenInstalled() {
        #if os(Linux) && arch(x86_64)
            XCTAssertTrue(GEMMBackend.available.contains(.openblas))
            if FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/\(OneDNN.libraryName)") {
                XCTAssertEqual(GEMMBackend.available.first, .onednn)
                XCTAssertTrue(GEMMBackend.onednn.version.hasPrefix("oneDNN "))
                XCTAssertFalse(GEMMBackend.onednn.kernels.hasPrefix("isa"), "unnamed ISA \(GEMMBackend.onednn.kernels)")
            }
        #endif
    }

    func testOpenBLASCoreAdvice() {
        let avx2: Set = ["sse4_2", "avx", "avx2", "fma"]
        let avx512 = avx2.union(["avx512f", "avx512bw", "avx512vl", "avx512dq"])
        XCTAssertEqual(OpenBLASCoreAdvice(core: "Prescott", flags: avx512)?.suggested, "SkylakeX")
        XCTAssertEqual(OpenBLASCoreAdvice(core: "Prescott", flags: avx512.union(["avx512_bf16"]))?.suggested, "Cooperlake")
        XCTAssertEqual(OpenBLASCoreAdvice(core: "Nehalem", flags: avx2)?.suggested, "Haswell")
        XCTAssertEqual(OpenBLASCoreAdvice(core: "Sandybridge", flags: avx2)?.suggested, "Haswell")
        XCTAssertNil(OpenBLASCoreAdvice(core: "Sandybridge", flags: ["avx"]), "Sandybridge suits an AVX-only CPU")
        XCTAssertNil(OpenBLASCoreAdvice(core: "Prescott", flags: ["sse3"]), "nothing better for an SSE3 CPU")
        XCTAssertNil(OpenBLASCoreAdvice(core: "Haswell", flags: avx2))
        XCTAssertNil(OpenBLASCoreAdvice(core: "SkylakeX", flags: avx512))
        XCTAssertNil(OpenBLASCoreAdvice(core: "Zen", flags: avx2))
        let message = OpenBLASCoreAdvice(core: "Prescott", flags: avx512)!.message
        XCTAssertTrue(message.contains("Prescott") && message.contains("OPENBLAS_CORETYPE=SkylakeX"), message)
    }

    func testCPUInfoReadsTheFirstProcessor() {
        let cpuinfo =
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nflags\t\t: fpu sse avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: fpu\n"
        let cpu = CPUInfo(cpuinfo: cpuinfo)
        XCTAssertEqual(cpu.model, "Intel(R) Xeon(R) Gold 6338")
        XCTAssertEqual(cpu.flags, ["fpu", "sse", "avx2", "avx512f"])
        XCTAssertTrue(CPUInfo(cpuinfo: "").flags.isEmpty)
    }

    func testNEBULABLASValues() throws {
        XCTAssertEqual(try GEMMBackend.named(nil), GEMMBackend.available[0])
        XCTAssertEqual(try GEMMBackend.named(""), GEMMBackend.available[0])
        for backend in GEMMBackend.available {
            XCTAssertEqual(try GEMMBackend.named(backend.rawValue.uppercased()), backend)
        }
        XCTAssertThrowsError(try GEMMBackend.named("mkl")) { error in
            XCTAssertTrue("\(error)".hasPrefix("NEBULA_BLAS=mkl: unknown GEMM backend"), "\(error)")
        }
        for backend in GEMMBackend.allCases where !GEMMBackend.available.contains(backend) {
            XCTAssertThrowsError(try GEMMBackend.named(backend.rawValue)) { error in
                XCTAssertTrue("\(error)".hasPrefix("NEBULA_BLAS=\(backend.rawValue): "), "\(error)")
            }
        }
    }
}
