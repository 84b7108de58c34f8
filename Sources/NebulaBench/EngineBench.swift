import ArgumentParser
import Foundation
import NebulaNN
import NebulaTensor
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// GFLOP/s of raw `cblas_sgemm` beside Nebula's matmul, attention and transformer block, so the engine's
/// overhead over BLAS is visible.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "engine", abstract: "Matmul, attention and transformer-block throughput.")

    @Option(help: "Seconds to spend on each measurement.") var seconds: Double = 1.0

    func run() {
        print("Nebula engine benchmark — \(Parallel.workerCount) cores")
        print("")
        print(pad("case", 44) + pad("ms", 10) + pad("GFLOP/s", 10) + "vs sgemm")
        var rng = SeededGenerator(seed: 0)
        for n in [256, 512, 1024, 2048] {
            let a = Tensor.randn([n, n], generator: &rng), b = Tensor.randn([n, n], generator: &rng)
            let flops = 2 * Double(n * n * n)
            var c = [Float](repeating: 0, count: n * n)
            setBLASThreads(Parallel.workerCount) // raw OpenBLAS with its own threads
            defer { setBLASThreads(1) }
            let raw = time {
                a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                pa.baseAddress!, Int32(n), pb.baseAddress!, Int32(n), 0, pc.baseAddress!, Int32(n))
                } } }
            }
            setBLASThreads(1)
            let nebula = time { _ = withNoGrad { a.matmul(b) } }
            report("cblas_sgemm \(n)×\(n)×\(n)", raw, flops)
            report("Tensor.matmul \(n)×\(n)×\(n)", nebula, flops, baseline: raw)
        }
        // Model-sized shapes: [B·T, C] · [C, 4C] as in a GPT MLP.
        for (rows, cin, cout) in [(768, 128, 512), (2048, 384, 1536)] {
            let x = Tensor.randn([rows, cin], generator: &rng).requiringGrad()
            let w = Tensor.randn([cout, cin], std: 0.02, generator: &rng).requiringGrad()
            let bias = Tensor.zeros([cout]).requiringGrad()
            let flops = 2 * Double(rows * cin * cout)
            let forward = time { _ = withNoGrad { linear(x, weight: w, bias: bias) } }
            report("linear fwd [\(rows),\(cin)]→\(cout)", forward, flops)
            let both = time { linear(x, weight: w, bias: bias).backward(seed: [Float](repeating: 1, count: rows * cout)) }
            report("linear fwd+bwd", both, 3 * flops)
        }
        for (b, t, c, h) in [(12, 64, 128, 4), (8, 256, 384, 6)] {
            let q = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let k = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let v = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let flops = 4 * Double(b * t * t * c) // two GEMMs, causal not discounted
            let seed = [Float](repeating: 1, count: b * t * c)
            let forward = time { _ = withNoGrad { scaledDotProductAttention(query: q, key: k, value: v, heads: h, causal: true) } }
            report("attention fwd B\(b) T\(t) C\(c) H\(h)", forward, flops)
            let both = time { scaledDotProductAttention(query: q, key: k, value: v, heads: h, causal: true).backward(seed: seed) }
            report("attention fwd+bwd", both, 3 * flops)
        }
        for (b, t, c, h) in [(12, 64, 128, 4), (8, 256, 384, 6)] {
            let block = TransformerBlock(c, heads: h, causal: true, generator: &rng)
            let x = Tensor.randn([b, t, c], generator: &rng).requiringGrad()
            let flops = Double(b * t) * (24 * Double(c * c) + 4 * Double(t * c))
            let seed = [Float](repeating: 1, count: b * t * c)
            let forward = time { _ = withNoGrad { block(x) } }
            report("block fwd B\(b) T\(t) C\(c) H\(h)", forward, flops)
            let both = time { block(x).backward(seed: seed); block.zeroGrad(); x.zeroGrad() }
            report("block fwd+bwd", both, 3 * flops)
        }
    }

    /// Median seconds per call over repeated runs filling about `seconds`.
    func time(_ body: () -> Void) -> Double {
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

    func report(_ name: String, _ seconds: Double, _ flops: Double, baseline: Double? = nil) {
        let ratio = baseline.map { String(format: "%.1f%%", 100 * $0 / seconds) } ?? ""
        print(pad(name, 44) + pad(String(format: "%.3f", seconds * 1e3), 10) + pad(String(format: "%.1f", flops / seconds / 1e9), 10) + ratio)
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
