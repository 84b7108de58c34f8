import Foundation
import XCTest
import NebulaTensor
@testable import NebulaDiffusion

/// The Gaussian fitted to latents: its moments, its samples, and the linear denoiser's loss against a direct
/// computation and against its closed-form expectation.
final class GaussianLatentModelTests: XCTestCase {
    /// Latents `[n, 1, 2]` from N(μ, AAᵀ), μ = (1, −2), A = [[2, 0], [1, 0.5]]: covariance [[4, 2], [2, 1.25]].
    func correlatedLatents(_ n: Int, seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        let white = Tensor.randn([n, 2], generator: &generator).data
        let data = (0..<n).flatMap { i -> [Float] in
            let (u, v) = (white[2 * i], white[2 * i + 1])
            return [1 + 2 * u, -2 + u + 0.5 * v]
        }
        return Tensor(shape: [n, 1, 2], data: data)
    }

    func covariance(_ z: Tensor) -> [Double] {
        let n = z.shape[0]
        let x = (0..<n).map { Double(z.data[2 * $0]) }, y = (0..<n).map { Double(z.data[2 * $0 + 1]) }
        let (mx, my) = (x.reduce(0, +) / Double(n), y.reduce(0, +) / Double(n))
        func c(_ a: [Double], _ ma: Double, _ b: [Double], _ mb: Double) -> Double {
            zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) } / Double(n - 1)
        }
        return [c(x, mx, x, mx), c(x, mx, y, my), c(y, my, y, my)]
    }

    func testFitsTheMomentsAndSamplesThem() {
        let model = GaussianLatentModel(latents: correlatedLatents(20_000, seed: 1))
        XCTAssertEqual(model.shape, [1, 2])
        XCTAssertEqual(model.mean[0], 1, accuracy: 0.05)
        XCTAssertEqual(model.mean[1], -2, accuracy: 0.05)
        // Eigenvalues of [[4, 2], [2, 1.25]]: (5.25 ± √(2.75² + 16)) / 2.
        let root = (2.75 * 2.75 + 16.0).squareRoot()
        XCTAssertEqual(Double(model.variances[0]), (5.25 + root) / 2, accuracy: 0.1)
        XCTAssertEqual(Double(model.variances[1]), (5.25 - root) / 2, accuracy: 0.02)

        var generator = SeededGenerator(seed: 2)
        let drawn = model.sample(count: 20_000, generator: &generator)
        XCTAssertEqual(drawn.shape, [20_000, 1, 2])
        for (found, expected) in zip(covariance(drawn), [4, 2, 1.25]) { XCTAssertEqual(found, expected, accuracy: 0.12) }
        let meanX = (0..<20_000).reduce(0.0) { $0 + Double(drawn.data[2 * $1]) } / 20_000
        XCTAssertEqual(meanX, 1, accuracy: 0.06)
    }

    /// The loss computed in the eigenbasis equals x0̂ = μ + αΣ(α²Σ + σ²I)⁻¹(z − αμ) worked out with the 2 × 2
    /// inverse, for every objective.
    func testLinearDenoiserLossMatchesTheDirectComputation() {
        let fitted = correlatedLatents(5_000, seed: 3)
        let model = GaussianLatentModel(latents: fitted)
        let m = (0..<2).map { j in (0..<5_000).reduce(0.0) { $0 + Double(fitted.data[2 * $1 + j]) } / 5_000 }
        let c = covariance(fitted)  // Σ = [[c0, c1], [c1, c2]]
        let x0 = correlatedLatents(16, seed: 4)
        var generator = SeededGenerator(seed: 5)
        let noise = Tensor.randn([16, 1, 2], generator: &generator)
        let times = (0..<16).map { Float($0) / 16 + 0.02 }
        let schedule = NoiseSchedule(scale: 0.5)
        for objective in Objective.allCases {
            var total = 0.0
            for row in 0..<16 {
                let (a, s) = schedule.alphaSigma(Double(times[row]))
                let x = [Double(x0.data[2 * row]), Double(x0.data[2 * row + 1])]
                let e = [Double(noise.data[2 * row]), Double(noise.data[2 * row + 1])]
                let r = [a * x[0] + s * e[0] - a * m[0], a * x[1] + s * e[1] - a * m[1]]  // z − αμ
                // M = α²Σ + σ²I, x0̂ = μ + αΣM⁻¹r.
                let (p, q, u) = (a * a * c[0] + s * s, a * a * c[1], a * a * c[2] + s * s)
                let det = p * u - q * q
                let w = [(u * r[0] - q * r[1]) / det, (-q * r[0] + p * r[1]) / det]
                let estimate = [m[0] + a * (c[0] * w[0] + c[1] * w[1]), m[1] + a * (c[1] * w[0] + c[2] * w[1])]
                let (fx, fe) = objective.targetCoefficients(alpha: a, sigma: s)
                for j in 0..<2 {
                    let epsilonHat = (a * x[j] + s * e[j] - a * estimate[j]) / s
                    let error = (fx * estimate[j] + fe * epsilonHat) - (fx * x[j] + fe * e[j])
                    total += error * error
                }
            }
            let found = model.linearDenoiserLoss(x0: x0, noise: noise, times: times, schedule: schedule, objective: objective)
            XCTAssertEqual(found, total / 32, accuracy: 1e-3 * max(1, total / 32), "\(objective)")
        }
    }

    /// On Gaussian data at one time, the v-loss averages to mean_i λ_i / (α²λ_i + σ²) (1 for white data), and no
    /// other Gaussian's linear denoiser does better on that data.
    func testLinearDenoiserLossAveragesToItsClosedFormAndIsTheBestLinearOne() {
        let model = GaussianLatentModel(latents: correlatedLatents(20_000, seed: 6))
        let x0 = correlatedLatents(20_000, seed: 7)
        var generator = SeededGenerator(seed: 8)
        let noise = Tensor.randn(x0.shape, generator: &generator)
        let (schedule, time) = (NoiseSchedule.cosine, Float(0.5))
        let times = Array(repeating: time, count: 20_000)
        let (a, s) = schedule.alphaSigma(Double(time))
        let expected = model.variances.map { Double($0) }.reduce(0) { $0 + $1 / (a * a * $1 + s * s) } / 2
        let found = model.linearDenoiserLoss(x0: x0, noise: noise, times: times, schedule: schedule, objective: .v)
        XCTAssertEqual(found, expected, accuracy: 0.02)

        let white = GaussianLatentModel(latents: Tensor.randn([20_000, 1, 2], generator: &generator))
        let whiteData = Tensor.randn([20_000, 1, 2], generator: &generator)
        XCTAssertEqual(
            white.linearDenoiserLoss(x0: whiteData, noise: noise, times: times, schedule: schedule, objective: .v), 1, accuracy: 0.03)
        // The white Gaussian's denoiser on the correlated data: worse than the fitted one's.
        XCTAssertGreaterThan(white.linearDenoiserLoss(x0: x0, noise: noise, times: times, schedule: schedule, objective: .v), found + 0.3)
    }
}
