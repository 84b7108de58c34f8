import XCTest
@testable import NebulaTensor

/// Finite-difference gradient check: compares the analytic gradient of `sum(f(inputs) ∘ upstream)` with
/// central differences, the loss accumulated in Float64 to keep rounding noise well below the tolerance.
func checkGradients(
    _ inputs: [Tensor], eps: Float = 1e-2, tolerance: Float = 2e-2, seed: UInt64 = 7,
    file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor
) {
    for t in inputs { t.requiringGrad(); t.zeroGrad() }
    var rng = SeededGenerator(seed: seed)
    let probe = withNoGrad { f(inputs) }
    let upstream = (0..<probe.count).map { _ in rng.nextGaussian() }
    func loss() -> Double {
        let out = withNoGrad { f(inputs) }
        return zip(out.data, upstream).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    f(inputs).backward(seed: upstream)
    for (n, t) in inputs.enumerated() {
        let analytic = t.gradData ?? [Float](repeating: 0, count: t.count)
        for i in 0..<t.count {
            let original = t.data[i]
            t.data[i] = original + eps
            let plus = loss()
            t.data[i] = original - eps
            let minus = loss()
            t.data[i] = original
            let numeric = Float((plus - minus) / (2 * Double(eps)))
            let error = abs(numeric - analytic[i]) / max(1, abs(numeric))
            if error > tolerance {
                XCTFail("input \(n) element \(i): analytic \(analytic[i]) vs numeric \(numeric)", file: file, line: line)
                return
            }
        }
    }
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor.randn(shape, std: scale, generator: &rng)
}
