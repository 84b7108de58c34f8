import NebulaEval
import NebulaTensor
import XCTest

final class FrechetDistanceTests: XCTestCase {
    /// Random 2-d sets with correlated, different covariances (which do not commute), against the closed
    /// form for 2 × 2 matrices: tr (Σa Σb)^½ = √(tr Σa Σb + 2 √det Σa Σb).
    func testMatchesTheClosedFormInTwoDimensions() {
        var rng = SeededGenerator(seed: 5)
        let a = (0..<60).map { _ -> [Float] in
            let (u, v) = (rng.nextGaussian(), rng.nextGaussian()); return [u, 0.8 * u + 0.3 * v]
        }
        let b = (0..<45).map { _ -> [Float] in
            let (u, v) = (rng.nextGaussian(), rng.nextGaussian())
            return [2 * u - v + 1, 0.5 * v - 3]
        }
        func fit(_ x: [[Float]]) -> (mean: [Double], covariance: [Double]) {  // [xx, xy, yx, yy], unbiased
            let n = Double(x.count)
            let mean = (0..<2).map { j in x.reduce(0.0) { $0 + Double($1[j]) } / n }
            let covariance = (0..<4).map { k -> Double in
                let (i, j) = (k / 2, k % 2)
                var sum = 0.0
                for v in x { sum += (Double(v[i]) - mean[i]) * (Double(v[j]) - mean[j]) }
                return sum / (n - 1)
            }
            return (mean, covariance)
        }
        let (fa, fb) = (fit(a), fit(b))
        let (p, q) = (fa.covariance, fb.covariance)
        let product = [p[0] * q[0] + p[1] * q[2], p[0] * q[1] + p[1] * q[3], p[2] * q[0] + p[3] * q[2], p[2] * q[1] + p[3] * q[3]]
        let crossTrace = (product[0] + product[3] + 2 * (product[0] * product[3] - product[1] * product[2]).squareRoot()).squareRoot()
        let meanGap = zip(fa.mean, fb.mean).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let expected = meanGap + p[0] + p[3] + q[0] + q[3] - 2 * crossTrace
        XCTAssertEqual(frechetDistance(a, b), expected, accuracy: 1e-9 * expected)
        XCTAssertEqual(frechetDistance(b, a), expected, accuracy: 1e-9 * expected)
    }

    /// A set against itself is at distance 0; a shift by δ adds ‖δ‖²; scaling by s multiplies it by s².
    func testZeroForTheSameSetAndHowItScales() {
        var rng = SeededGenerator(seed: 6)
        let a = (0..<40).map { _ in (0..<24).map { _ in rng.nextGaussian() } }
        let b = (0..<40).map { _ in (0..<24).map { _ in 1.5 * rng.nextGaussian() } }
        XCTAssertEqual(frechetDistance(a, a), 0, accuracy: 1e-6)
        let shifted = a.map { $0.map { $0 + 0.5 } }
        XCTAssertEqual(frechetDistance(shifted, a), 24 * 0.25, accuracy: 1e-6)
        let d = frechetDistance(a, b)
        XCTAssertGreaterThan(d, 1)
        XCTAssertEqual(frechetDistance(a.map { $0.map { 3 * $0 } }, b.map { $0.map { 3 * $0 } }), 9 * d, accuracy: 1e-6 * d)
    }
}
