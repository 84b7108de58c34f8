import ArgumentParser
import Foundation
import NebulaNN
import NebulaTensor

/// GFLOP/s of every available GEMM backend at the comparison configurations' shapes — the raw library on its
/// own threads beside Nebula's `sgemm` — then Nebula's linear layer, attention and transformer block, so the
/// engine's overhead over the library is visible.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "GEMM backends, matmul, attention and transformer-block throughput.")

    @Option(help: "Seconds to spend on each measurement.") var seconds: Double = 1.0

    /// One GEMM of a training step: a linear layer's forward (`x · Wᵀ`), input gradient (`dy · W`) or weight
    /// gradient (`dyᵀ · x`).
    struct Shape {
        let name: String, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool

        static func linear(_ name: String, rows: Int, in inFeatures: Int, out outFeatures: Int) -> [Shape] {
            [
                Shape(name: "\(name) fwd", m: rows, n: outFeatures, k: inFeatures, transposeA: false, transposeB: true),
                Shape(name: "\(name) dx", m: rows, n: inFeatures, k: outFeatures, transposeA: false, transposeB: false),
                Shape(name: "\(name) dW", m: outFeatures, n: inFeatures, k: rows, transposeA: true, transposeB: false)
            ]
        }

        /// The layers of the `nebula-bench gpt` configurations: small (B·T = 768, C = 128), medium (2048, 384).
        static let comparison: [Shape] = {
            var shapes: [Shape] = []
            for (config, rows, c) in [("small", 768, 128), ("medium", 2048, 384)] {
                shapes += linear("\(config) qkv", rows: rows, in: c, out: 3 * c)
                shapes += linear("\(config) proj", rows: rows, in: c, out: c)
                shapes += linear("\(config) mlp up", rows: rows, in: c, out: 4 * c)
                shapes += linear("\(config) mlp down", rows: rows, in: 4 * c, out: c)
            }
            return shapes + [Shape(name: "square", m: 1024, n: 1024, k: 1024, transposeA: false, transposeB: false)]
        }()

        var label: String { "\(name) \(m)×\(n)×\(k) \(transposeA ? "T" : "N")\(transposeB ? "T" : "N")" }
    }

    func run() {
        let backends = GEMMBackend.available, workers = Parallel.workerCount
        print("Nebula engine benchmark — \(workers) cores, GEMM backends (default first):")
        print(backends.map { "  \($0.rawValue): \($0.version), \($0.kernels)" }.joined(separator: "\n"))
        print("")
        print("GEMM GFLOP/s: lib = one library call on \(workers) library threads; nebula = Nebula's sgemm split over")
        print("\(workers) workers, one library thread each; % = nebula against the fastest lib of the row")
        print(pad("shape", 38) + backends.map { pad("\($0.rawValue) lib", 14) + pad("nebula", 8) + pad("%", 6) }.joined())
        for shape in Shape.comparison {
            let nebula = backends.map { gigaflops($0, shape, libraryThreads: nil) }
            let library = backends.map { gigaflops($0, shape, libraryThreads: workers) }
            usleep(200_000)  // the libraries' threads spin for a while after a call: let them sleep before the next row
            let fastest = library.max()!
            print(
                pad(shape.label, 38)
                    + backends.indices.map {
                        pad(String(format: "%.1f", library[$0]), 14) + pad(String(format: "%.1f", nebula[$0]), 8)
                            + pad(String(format: "%.0f%%", 100 * nebula[$0] / fastest), 6)
                    }.joined())
        }

        print("")
        print("Nebula ops on each backend")
        print(pad("case", 40) + backends.map { pad("\($0.rawValue) ms", 14) + pad("GFLOP/s", 9) }.joined())
        var rng = SeededGenerator(seed: 0)
        // Model-sized shapes: [B·T, C] · [C, 4C] as in a GPT MLP.
        for (rows, cin, cout) in [(768, 128, 512), (2048, 384, 1536)] {
            let x = Tensor.randn([rows, cin], generator: &rng).requiringGrad()
            let w = Tensor.randn([cout, cin], std: 0.02, generator: &rng).requiringGrad()
            let bias = Tensor.zeros([cout]).requiringGrad()
            let flops = 2 * Double(rows * cin * cout)
            measure("linear fwd [\(rows),\(cin)]→\(cout)", flops) { _ = withNoGrad { linear(x, weight: w, bias: bias) } }
            measure("linear fwd+bwd", 3 * flops) {
                linear(x, weight: w, bias: bias).backward(seed: [Float](repeating: 1, count: rows * cout))
            }
        }
        for (b, t, c, h) in [(12, 64, 128, 4), (8, 256, 384, 6)] {
            let q = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let k = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let v = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let flops = 4 * Double(b * t * t * c)  // two GEMMs, causal not discounted
            let seed = [Float](repeating: 1, count: b * t * c)
            measure("attention fwd B\(b) T\(t) C\(c) H\(h)", flops) {
                _ = withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, heads: h, causal: true) }
            }
            measure("attention fwd+bwd", 3 * flops) {
                scaledDotProductAttention(query: q, key: k, value: v, heads: h, causal: true).backward(seed: seed)
            }
        }
        for (b, t, c, h) in [(12, 64, 128, 4), (8, 256, 384, 6)] {
            let block = TransformerBlock(c, heads: h, causal: true, generator: &rng)
            let x = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let flops = Double(b * t) * (24 * Double(c * c) + 4 * Double(t * c))
            let seed = [Float](repeating: 1, count: b * t * c)
            measure("block fwd B\(b) T\(t) C\(c) H\(h)", flops) { _ = withNoGrad { block(x) } }
            measure("block fwd+bwd", 3 * flops) {
                block(x).backward(seed: seed); block.zeroGrad(); x.zeroGrad()
            }
        }
    }

    func gigaflops(_ backend: GEMMBackend, _ shape: Shape, libraryThreads: Int?) -> Double {
        backend.gigaflops(
            m: shape.m, n: shape.n, k: shape.k, transposeA: shape.transposeA, transposeB: shape.transposeB,
            libraryThreads: libraryThreads, seconds: seconds)
    }

    /// Times `body` on every available backend and prints one row: ms and GFLOP/s for each.
    func measure(_ name: String, _ flops: Double, _ body: () -> Void) {
        let times = GEMMBackend.available.map { backend in
            var context = ExecutionContext.current
            context.gemmBackend = backend
            return context.run { medianSeconds(over: seconds, body) }
        }
        print(
            pad(name, 40)
                + times.map { pad(String(format: "%.3f", $0 * 1e3), 14) + pad(String(format: "%.1f", flops / $0 / 1e9), 9) }.joined())
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
