import Foundation
import XCTest
import NebulaTensor
@testable import NebulaDiffusion

final class NoiseScheduleTests: XCTestCase {
    let times: [Double] = [0, 1e-5, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1]

    func testVariancePreserving() {
        for schedule in [NoiseSchedule.cosine, NoiseSchedule(scale: 0.5), NoiseSchedule(scale: 2)] {
            for t in times {
                let (a, s) = schedule.alphaSigma(t)
                XCTAssertEqual(a * a + s * s, 1, accuracy: 1e-12, "t = \(t)")
                XCTAssertTrue(a > 0 && s > 0, "both coefficients stay positive at t = \(t)")
                XCTAssertEqual(Foundation.log(a * a / (s * s)), schedule.logSNR(t), accuracy: 1e-6)
            }
        }
    }

    func testCosineAwayFromTheClip() {
        for t in stride(from: 0.001, through: 0.999, by: 0.0125) {
            XCTAssertEqual(NoiseSchedule.cosine.alpha(t), Foundation.cos(Double.pi * t / 2), accuracy: 1e-12)
            XCTAssertEqual(NoiseSchedule.cosine.sigma(t), Foundation.sin(Double.pi * t / 2), accuracy: 1e-12)
        }
    }

    func testClipKeepsTheEndsFinite() {
        let schedule = NoiseSchedule.cosine
        XCTAssertEqual(schedule.logSNR(0.0), 15)
        XCTAssertEqual(schedule.logSNR(1.0), -15)
        let ratio = schedule.sigma(1.0) / schedule.alpha(1.0)
        XCTAssertTrue(ratio.isFinite)
        XCTAssertEqual(ratio, Foundation.exp(7.5), accuracy: 1e-6 * Foundation.exp(7.5))
        XCTAssertLessThan(schedule.alpha(1.0), 6e-4)
        // the clip only bites at the very ends
        XCTAssertEqual(schedule.alpha(0.9996), Foundation.cos(Double.pi * 0.9996 / 2), accuracy: 1e-12)
        XCTAssertEqual(schedule.alpha(0.0004), Foundation.cos(Double.pi * 0.0004 / 2), accuracy: 1e-12)
    }

    func testLogSNRDecreases() {
        for schedule in [NoiseSchedule.cosine, NoiseSchedule(scale: 0.25)] {
            let grid = (0...1000).map { schedule.logSNR(Double($0) / 1000) }
            for i in 1..<grid.count { XCTAssertLessThanOrEqual(grid[i], grid[i - 1]) }
            XCTAssertGreaterThan(grid[0], grid[1000])
        }
    }

    func testShiftAddsTwoLogScale() {
        let shifted = NoiseSchedule(scale: 0.5)
        for t in times {
            XCTAssertEqual(shifted.logSNR(t), NoiseSchedule.cosine.logSNR(t) + 2 * Foundation.log(0.5), accuracy: 1e-12)
            XCTAssertLessThanOrEqual(shifted.alpha(t), NoiseSchedule.cosine.alpha(t), "scale < 1 adds noise")
        }
    }

    func testTimeForLogSNRInvertsLogSNR() {
        for schedule in [NoiseSchedule.cosine, NoiseSchedule(scale: 0.3)] {
            for t in stride(from: 0.01, through: 0.99, by: 0.07) {
                XCTAssertEqual(schedule.time(forLogSNR: schedule.logSNR(t)), t, accuracy: 1e-9)
            }
        }
    }

    func testCodableWithSnakeCaseKeys() throws {
        let schedule = NoiseSchedule(scale: 0.5, logSNRMin: -12, logSNRMax: 10)
        let json = try JSONEncoder().encode(schedule)
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertTrue(text.contains("\"logsnr_min\""), text)
        XCTAssertEqual(try JSONDecoder().decode(NoiseSchedule.self, from: json), schedule)
        let decoded = try JSONDecoder().decode(Objective.self, from: Data("\"epsilon\"".utf8))
        XCTAssertEqual(decoded, .epsilon)
    }

    func testNoisedUsesOneTimePerRow() {
        var rng = SeededGenerator(seed: 3)
        let x0 = Tensor.randn([3, 2, 4], generator: &rng)
        let eps = Tensor.randn([3, 2, 4], generator: &rng)
        let t: [Float] = [0.1, 0.5, 0.95]
        let z = NoiseSchedule.cosine.noised(x0, noise: eps, times: t)
        for row in 0..<3 {
            let (a, s) = NoiseSchedule.cosine.alphaSigma(Double(t[row]))
            for j in 0..<8 {
                let i = row * 8 + j
                XCTAssertEqual(z.data[i], Float(a) * x0.data[i] + Float(s) * eps.data[i], accuracy: 1e-6)
            }
        }
    }
}

final class ObjectiveTests: XCTestCase {
    let times: [Double] = [0, 1e-4, 1e-3, 0.01, 0.3, 0.5, 0.7, 0.99, 0.999, 1]
    let schedules = [NoiseSchedule.cosine, NoiseSchedule(scale: 0.5)]

    func randomPair(_ n: Int, seed: UInt64) -> (x0: [Float], eps: [Float]) {
        var rng = SeededGenerator(seed: seed)
        return ((0..<n).map { _ in 0.7 + 0.5 * rng.nextGaussian() }, (0..<n).map { _ in rng.nextGaussian() })
    }

    /// Float tolerance scaled by the conversion's condition (1/α or 1/σ near the ends).
    func tolerance(_ c: Objective.Conversion) -> Float {
        let size = [c.x0FromOutput, c.x0FromSample, c.epsFromOutput, c.epsFromSample].map { Swift.abs($0) }.max()!
        return Float(2e-6 * (1 + size) * 4)
    }

    /// v = α·ε − σ·x0;  x0 = α·z − σ·v;  ε = σ·z + α·v — checked on the values directly.
    func testVIdentities() {
        let (x0, eps) = randomPair(64, seed: 1)
        for schedule in schedules {
            for t in times {
                let (a, s) = schedule.alphaSigma(t)
                let z = zip(x0, eps).map { Float(a) * $0 + Float(s) * $1 }
                let v = Objective.v.target(x0: x0, noise: eps, alpha: a, sigma: s)
                for i in 0..<x0.count {
                    XCTAssertEqual(v[i], Float(a) * eps[i] - Float(s) * x0[i], accuracy: 1e-6)
                    XCTAssertEqual(Float(a) * z[i] - Float(s) * v[i], x0[i], accuracy: 1e-5, "x0 = αz − σv at t = \(t)")
                    XCTAssertEqual(Float(s) * z[i] + Float(a) * v[i], eps[i], accuracy: 1e-5, "ε = σz + αv at t = \(t)")
                }
            }
        }
    }

    /// For each objective: target(x0, ε) fed back as the model output on z = α·x0 + σ·ε gives (x0, ε).
    func testRoundTripsAtEveryTime() {
        let (x0, eps) = randomPair(64, seed: 2)
        for schedule in schedules {
            for objective in Objective.allCases {
                for t in times {
                    let (a, s) = schedule.alphaSigma(t)
                    let z = zip(x0, eps).map { Float(a) * $0 + Float(s) * $1 }
                    let out = objective.target(x0: x0, noise: eps, alpha: a, sigma: s)
                    let (x0Hat, epsHat) = objective.predictions(modelOutput: out, sample: z, alpha: a, sigma: s)
                    let tol = tolerance(objective.conversion(alpha: a, sigma: s))
                    for i in 0..<x0.count {
                        XCTAssertEqual(x0Hat[i], x0[i], accuracy: tol, "\(objective) x0 at t = \(t)")
                        XCTAssertEqual(epsHat[i], eps[i], accuracy: tol, "\(objective) ε at t = \(t)")
                    }
                }
            }
        }
    }

    /// The conversions compose: a v output converted to (x0̂, ε̂), then to an ε or x0 output, then back.
    func testObjectivesConvertIntoEachOther() {
        let (x0, eps) = randomPair(32, seed: 4)
        for t in [0.05, 0.4, 0.8] {
            let (a, s) = NoiseSchedule.cosine.alphaSigma(t)
            let z = zip(x0, eps).map { Float(a) * $0 + Float(s) * $1 }
            let v = Objective.v.target(x0: x0, noise: eps, alpha: a, sigma: s)
            let (x0Hat, epsHat) = Objective.v.predictions(modelOutput: v, sample: z, alpha: a, sigma: s)
            for objective in Objective.allCases {
                let out = objective.target(x0: x0Hat, noise: epsHat, alpha: a, sigma: s)
                let direct = objective.target(x0: x0, noise: eps, alpha: a, sigma: s)
                for i in 0..<out.count { XCTAssertEqual(out[i], direct[i], accuracy: 1e-5) }
            }
        }
    }

    /// The ideal (MMSE) model outputs E[target | z]. For Gaussian data x0 ~ N(μ, s²) the posterior means
    /// E[x0 | z] and E[ε | z] are known in closed form; the conversions must map the ideal output of every
    /// objective back to them, and the training target's expectation must be the ideal output.
    func testConversionsAgreeWithTrainingTargetsOnTheIdealModel() {
        let (mu, sd) = (0.7, 0.5)
        var rng = SeededGenerator(seed: 9)
        for t in [0.02, 0.3, 0.6, 0.95] {
            let (a, s) = NoiseSchedule.cosine.alphaSigma(t)
            let z = (0..<16).map { _ in Float(a * mu) + Float((a * a * sd * sd + s * s).squareRoot()) * rng.nextGaussian() }
            let ex0 = z.map { Float(mu + a * sd * sd / (a * a * sd * sd + s * s) * (Double($0) - a * mu)) }
            let eeps = z.map { Float(s / (a * a * sd * sd + s * s) * (Double($0) - a * mu)) }
            for objective in Objective.allCases {
                // E[target | z] = target(E[x0 | z], E[ε | z]) because the target is linear in (x0, ε)
                let ideal = objective.target(x0: ex0, noise: eeps, alpha: a, sigma: s)
                let (x0Hat, epsHat) = objective.predictions(modelOutput: ideal, sample: z, alpha: a, sigma: s)
                for i in 0..<z.count {
                    XCTAssertEqual(x0Hat[i], ex0[i], accuracy: 1e-5, "\(objective) t = \(t)")
                    XCTAssertEqual(epsHat[i], eeps[i], accuracy: 1e-5, "\(objective) t = \(t)")
                }
            }
            // Monte Carlo: average the v target over x0 ~ p(x0 | z) for one z; it must approach E[v | z].
            let z0 = Double(z[0])
            let postVar = sd * sd * s * s / (a * a * sd * sd + s * s)
            var meanV = 0.0
            let draws = 20000
            for _ in 0..<draws {
                let x = Double(ex0[0]) + postVar.squareRoot() * Double(rng.nextGaussian())
                let e = (z0 - a * x) / s
                meanV += Double(Objective.v.target(x0: [Float(x)], noise: [Float(e)], alpha: a, sigma: s)[0])
            }
            meanV /= Double(draws)
            let idealV = Objective.v.target(x0: [ex0[0]], noise: [eeps[0]], alpha: a, sigma: s)[0]
            XCTAssertEqual(meanV, Double(idealV), accuracy: 0.02, "E[v | z] at t = \(t)")
        }
    }

    /// The tensor versions (one time per row) agree with the array versions.
    func testTensorVersionsMatchArrays() {
        var rng = SeededGenerator(seed: 5)
        let x0 = Tensor.randn([3, 2, 5], generator: &rng)
        let eps = Tensor.randn([3, 2, 5], generator: &rng)
        let times: [Float] = [0.05, 0.5, 0.97]
        let schedule = NoiseSchedule(scale: 0.7)
        let (alpha, sigma) = schedule.alphaSigma(times: times, rank: 3)
        XCTAssertEqual(alpha.shape, [3, 1, 1])
        let z = schedule.noised(x0, noise: eps, times: times)
        for objective in Objective.allCases {
            let target = objective.target(x0: x0, noise: eps, alpha: alpha, sigma: sigma)
            let (x0Hat, epsHat) = objective.predictions(modelOutput: target, sample: z, alpha: alpha, sigma: sigma)
            for row in 0..<3 {
                let (a, s) = (Double(alpha.data[row]), Double(sigma.data[row]))
                let range = (row * 10)..<(row * 10 + 10)
                let expected = objective.target(x0: Array(x0.data[range]), noise: Array(eps.data[range]), alpha: a, sigma: s)
                for (k, i) in range.enumerated() {
                    XCTAssertEqual(target.data[i], expected[k], accuracy: 1e-6)
                    XCTAssertEqual(x0Hat.data[i], x0.data[i], accuracy: 1e-4)
                    XCTAssertEqual(epsHat.data[i], eps.data[i], accuracy: 1e-4)
                }
            }
        }
    }
}
