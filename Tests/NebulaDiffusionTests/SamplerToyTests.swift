import Foundation
import XCTest
import NebulaTensor
@testable import NebulaDiffusion

/// A toy data distribution whose ideal denoiser is known exactly.
protocol ToyDistribution {
    /// E[x0 | z_t] and E[ε | z_t] for one value of z_t at (α, σ).
    func posteriorMeans(z: Double, alpha a: Double, sigma s: Double) -> (x0: Double, eps: Double)
}

/// x0 ~ N(μ, s²) in every dimension: E[x0 | z] = μ + α·s²/(α²s² + σ²)·(z − α·μ), E[ε | z] = σ/(α²s² + σ²)·(z − α·μ).
struct Gaussian: ToyDistribution {
    var mean: Double
    var std: Double
    func posteriorMeans(z: Double, alpha a: Double, sigma s: Double) -> (x0: Double, eps: Double) {
        let variance = a * a * std * std + s * s
        return (mean + a * std * std / variance * (z - a * mean), s / variance * (z - a * mean))
    }
}

/// A mixture of Gaussians: the posterior mean is the responsibility-weighted mean of the components'.
struct Mixture: ToyDistribution {
    var weights: [Double]
    var components: [Gaussian]
    var mean: Double { zip(weights, components).reduce(0) { $0 + $1.0 * $1.1.mean } }
    var variance: Double {
        zip(weights, components).reduce(0) { $0 + $1.0 * ($1.1.std * $1.1.std + $1.1.mean * $1.1.mean) } - mean * mean
    }
    func posteriorMeans(z: Double, alpha a: Double, sigma s: Double) -> (x0: Double, eps: Double) {
        // log responsibilities: log w_k + log N(z; α m_k, α² s_k² + σ²)
        let logs = zip(weights, components).map { w, c -> Double in
            let v = a * a * c.std * c.std + s * s
            return Foundation.log(w) - 0.5 * Foundation.log(v) - (z - a * c.mean) * (z - a * c.mean) / (2 * v)
        }
        let top = logs.max()!
        let r = logs.map { Foundation.exp($0 - top) }
        let total = r.reduce(0, +)
        var (x0, eps) = (0.0, 0.0)
        for (k, c) in components.enumerated() {
            let m = c.posteriorMeans(z: z, alpha: a, sigma: s)
            x0 += r[k] / total * m.x0
            eps += r[k] / total * m.eps
        }
        return (x0, eps)
    }
}

/// The ideal model for `objective`: E[target | z] computed from the closed-form posterior means (not
/// through the library's conversions): v = α·E[ε|z] − σ·E[x0|z], ε = E[ε|z], x0 = E[x0|z].
func analyticModel(_ data: ToyDistribution, schedule: NoiseSchedule, objective: Objective)
    -> (Tensor, Float) -> Tensor
{
    { z, t in
        let (a, s) = schedule.alphaSigma(Double(t))
        let out = z.data.map { zi -> Float in
            let m = data.posteriorMeans(z: Double(zi), alpha: a, sigma: s)
            switch objective {
            case .v: return Float(a * m.eps - s * m.x0)
            case .epsilon: return Float(m.eps)
            case .x0: return Float(m.x0)
            }
        }
        return Tensor(shape: z.shape, data: out)
    }
}

func moments(_ x: [Float]) -> (mean: Double, variance: Double) {
    let n = Double(x.count)
    let mean = x.reduce(0.0) { $0 + Double($1) } / n
    let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
    return (mean, variance)
}

final class SamplerToyTests: XCTestCase {
    let gaussian = Gaussian(mean: 0.7, std: 0.5)
    let count = 4000

    enum Kind: CustomStringConvertible {
        case ddpm, ddpmForward, ddim(Double)
        var description: String {
            switch self {
            case .ddpm: return "DDPM"
            case .ddpmForward: return "DDPM (forward variance)"
            case .ddim(let eta): return "DDIM η=\(eta)"
            }
        }
        var isForward: Bool { if case .ddpmForward = self { return true } else { return false } }
    }

    func toySampler(_ kind: Kind, schedule: NoiseSchedule, objective: Objective) -> any DiffusionSampler {
        switch kind {
        case .ddpm: return DDPMSampler(schedule: schedule, objective: objective)
        case .ddpmForward: return DDPMSampler(schedule: schedule, objective: objective, variance: .forward)
        case .ddim(let eta): return DDIMSampler(schedule: schedule, objective: objective, eta: eta)
        }
    }

    /// Runs a sampler on `count` independent values with the analytic model; returns the samples.
    func run(
        _ kind: Kind, steps: Int, data: ToyDistribution, schedule: NoiseSchedule = .cosine,
        objective: Objective = .v, seed: UInt64 = 1234
    ) -> [Float] {
        var sampler = toySampler(kind, schedule: schedule, objective: objective)
        sampler.setTimesteps(steps)
        var rng = SeededGenerator(seed: seed)
        let z1 = Tensor.randn([count], generator: &rng)
        let model = analyticModel(data, schedule: schedule, objective: objective)
        return sampler.sample(from: z1, generator: &rng) { z, t, _ in model(z, t) }.data
    }

    /// The exact mean and variance of a sampler's output for Gaussian data and the analytic model.
    /// With x0̂ affine in z, every step is affine plus Gaussian noise, so N(m, v) propagates exactly:
    /// z_s = A·z_t + B + noise. This is the sampler's own discretisation error, without Monte Carlo noise.
    /// (Re-derived here from the papers' formulas, independently of Samplers.swift.)
    func expectedMoments(_ kind: Kind, steps: Int, schedule: NoiseSchedule = .cosine) -> (mean: Double, variance: Double) {
        let (mu, sd) = (gaussian.mean, gaussian.std)
        var (m, v) = (0.0, 1.0)  // z_1 ~ N(0, 1)
        for i in 0..<steps {
            let t = 1 - Double(i) / Double(steps), s = 1 - Double(i + 1) / Double(steps)
            let (at, st) = schedule.alphaSigma(t)
            let (as_, ss) = schedule.alphaSigma(s)
            let k = at * sd * sd / (at * at * sd * sd + st * st)
            let (xA, xB) = (k, mu * (1 - k * at))  // x0̂ = xA·z + xB
            if i == steps - 1 { return (xA * m + xB, xA * xA * v) }  // the last step returns x0̂
            var (a, b, noise) = (0.0, 0.0, 0.0)
            switch kind {
            case .ddpm, .ddpmForward:  // VDM posterior: μ = (α_{t|s}σ_s²/σ_t²)·z + (α_s σ²_{t|s}/σ_t²)·x0̂, var = σ²_{t|s}σ_s²/σ_t²
                let ats = at / as_, var_ts = st * st - ats * ats * ss * ss
                a = ats * ss * ss / (st * st) + as_ * var_ts / (st * st) * xA
                b = as_ * var_ts / (st * st) * xB
                noise = kind.isForward ? var_ts : var_ts * ss * ss / (st * st)
            case .ddim(let eta):  // eq. 12 with ε̂ = (z − α_t x0̂)/σ_t, eq. 16 for σ(η)
                let sigmaEta = eta * (ss / st) * (1 - at * at / (as_ * as_)).squareRoot()
                let dir = (ss * ss - sigmaEta * sigmaEta).squareRoot()
                a = as_ * xA + dir * (1 - at * xA) / st
                b = as_ * xB - dir * at * xB / st
                noise = sigmaEta * sigmaEta
            }
            (m, v) = (a * m + b, a * a * v + noise)
        }
        return (m, v)
    }

    /// Every sampler, 10/50/250 steps, n = 4000 values of x0 ~ N(0.7, 0.5²):
    /// 1. the measured moments match the sampler's exact expected moments (Monte Carlo standard errors
    ///    for n = 4000: 0.008 on the mean, 2.2% on the variance; the tolerances are 4 of them);
    /// 2. the measured moments are within stated tolerances of the data's, tighter for more steps.
    ///    With few steps both samplers underestimate the variance: DDPM because its step uses the
    ///    posterior variance for a known x0 (the lower of Ho et al.'s two choices) although x0 is
    ///    uncertain given z_t; DDIM (η=0) from the first-order discretisation of the flow.
    func testGaussianMomentsAreRecovered() {
        // (steps, mean tolerance, relative variance tolerance) against the data distribution
        let budgets: [(Int, Double, Double)] = [(10, 0.03, 0.45), (50, 0.03, 0.16), (250, 0.03, 0.06)]
        let target = gaussian.std * gaussian.std
        var report: [String] = []
        for kind in [Kind.ddpm, .ddpmForward, .ddim(0), .ddim(1)] {
            for (steps, meanTol, varTol) in budgets {
                let (m, v) = moments(run(kind, steps: steps, data: gaussian))
                let exact = expectedMoments(kind, steps: steps)
                report.append(
                    String(
                        format: "%@ %3d steps: mean %.4f (err %+.4f)  var %.4f (rel err %+.2f%%; the chain's exact %+.2f%%)",
                        kind.description, steps, m, m - gaussian.mean, v, 100 * (v - target) / target,
                        100 * (exact.variance - target) / target))
                XCTAssertEqual(m, exact.mean, accuracy: 0.03, "\(kind) \(steps) steps: mean vs the chain's")
                XCTAssertEqual(v / exact.variance, 1, accuracy: 0.09, "\(kind) \(steps) steps: variance vs the chain's")
                XCTAssertEqual(m, gaussian.mean, accuracy: meanTol, "\(kind) \(steps) steps: mean")
                XCTAssertEqual(v / target, 1, accuracy: varTol, "\(kind) \(steps) steps: variance \(v)")
            }
        }
        print("Gaussian toy N(0.7, 0.5²), n = \(count):\n" + report.joined(separator: "\n"))
        // the exact chains converge: the variance error shrinks with the steps and is small at 1000
        for kind in [Kind.ddpm, .ddpmForward, .ddim(0)] {
            let errors = [10, 50, 250, 1000].map { Swift.abs(expectedMoments(kind, steps: $0).variance / target - 1) }
            for i in 1..<errors.count { XCTAssertLessThan(errors[i], errors[i - 1], "\(kind)") }
            XCTAssertLessThan(errors[3], 0.01, "\(kind) at 1000 steps")
        }
    }

    /// ε- and x0-prediction give the same samples as v-prediction (the conversions are exact up to
    /// rounding), also on a shifted schedule (more noise), whose moments match its own exact chain.
    func testOtherObjectivesAndShiftedSchedule() {
        var report: [String] = []
        let target = gaussian.std * gaussian.std
        for schedule in [NoiseSchedule.cosine, NoiseSchedule(scale: 0.5)] {
            for kind in [Kind.ddpm, .ddim(0)] {
                let reference = run(kind, steps: 50, data: gaussian, schedule: schedule, objective: .v)
                for objective in [Objective.epsilon, .x0] {
                    let x = run(kind, steps: 50, data: gaussian, schedule: schedule, objective: objective)
                    let maxDiff = zip(x, reference).map { Swift.abs($0 - $1) }.max()!
                    XCTAssertLessThan(maxDiff, 2e-3, "\(objective) vs v, \(kind), scale \(schedule.scale)")
                }
                let (m, v) = moments(reference)
                let exact = expectedMoments(kind, steps: 50, schedule: schedule)
                report.append(
                    String(
                        format: "scale %.1f %@ 50 steps: mean err %+.4f var rel err %+.2f%% (the chain's exact %+.2f%%)",
                        schedule.scale, kind.description, m - gaussian.mean, 100 * (v - target) / target,
                        100 * (exact.variance - target) / target))
                XCTAssertEqual(m, exact.mean, accuracy: 0.03)
                XCTAssertEqual(v / exact.variance, 1, accuracy: 0.09)
            }
        }
        print(report.joined(separator: "\n"))
    }

    /// A two-component mixture 0.3·N(−1, 0.3²) + 0.7·N(1.2, 0.3²): mean, variance and the share of samples
    /// on each side of the valley.
    func testMixtureIsRecovered() {
        let mixture = Mixture(weights: [0.3, 0.7], components: [Gaussian(mean: -1, std: 0.3), Gaussian(mean: 1.2, std: 0.3)])
        var report: [String] = []
        for kind in [Kind.ddpm, .ddim(0)] {
            for steps in [50, 250] {
                let x = run(kind, steps: steps, data: mixture)
                let (m, v) = moments(x)
                let rightShare = Double(x.filter { $0 > 0.1 }.count) / Double(x.count)
                report.append(
                    String(
                        format: "mixture %@ %3d steps: mean %.4f (true %.4f) var %.4f (true %.4f) right share %.3f",
                        kind.description, steps, m, mixture.mean, v, mixture.variance, rightShare))
                XCTAssertEqual(m, mixture.mean, accuracy: 0.06, "\(kind) \(steps)")
                XCTAssertEqual(v / mixture.variance, 1, accuracy: 0.08, "\(kind) \(steps)")
                XCTAssertEqual(rightShare, 0.7, accuracy: 0.03, "\(kind) \(steps)")
            }
        }
        print(report.joined(separator: "\n"))
    }

    /// DDIM with η = 0 follows the probability-flow ODE, whose exact solution for Gaussian data maps z_1
    /// to x0 = μ + s·(z_1 − α_1·μ)/√(α_1²s² + σ_1²). The per-sample error must shrink as steps grow.
    func testDeterministicDDIMConvergesToTheFlowMap() {
        let schedule = NoiseSchedule.cosine
        let (a1, s1) = schedule.alphaSigma(1.0)
        var rng = SeededGenerator(seed: 1234)
        let z1 = Tensor.randn([count], generator: &rng).data
        let exact = z1.map {
            gaussian.mean + gaussian.std * (Double($0) - a1 * gaussian.mean)
                / (a1 * a1 * gaussian.std * gaussian.std + s1 * s1).squareRoot()
        }
        var errors: [Double] = []
        for steps in [10, 50, 250] {
            let x = run(.ddim(0), steps: steps, data: gaussian)
            let rms = (zip(x, exact).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) } / Double(count)).squareRoot()
            errors.append(rms)
        }
        print("DDIM η=0 RMS distance to the exact flow map at 10/50/250 steps: \(errors)")
        XCTAssertLessThan(errors[1], errors[0])
        XCTAssertLessThan(errors[2], errors[1])
        XCTAssertLessThan(errors[2], 0.01)
    }

    /// DDPM's error (mean and variance together, with the same seed) shrinks from 10 to 250 steps.
    func testDDPMErrorShrinksWithSteps() {
        var errors: [Double] = []
        for steps in [10, 50, 250] {
            let (m, v) = moments(run(.ddpm, steps: steps, data: gaussian))
            let sd = v.squareRoot()
            errors.append(Swift.abs(m - gaussian.mean) + Swift.abs(sd - gaussian.std))
        }
        print("DDPM |mean err| + |std err| at 10/50/250 steps: \(errors)")
        XCTAssertLessThan(errors[2], errors[0])
        XCTAssertLessThanOrEqual(errors[1], errors[0] + 0.01, "monotone up to Monte Carlo noise")
        XCTAssertLessThanOrEqual(errors[2], errors[1] + 0.01, "monotone up to Monte Carlo noise")
    }

    func testSeedsMakeRunsRepeatable() {
        for kind in [Kind.ddpm, .ddim(0), .ddim(0.5)] {
            let a = run(kind, steps: 20, data: gaussian, seed: 7)
            let b = run(kind, steps: 20, data: gaussian, seed: 7)
            let c = run(kind, steps: 20, data: gaussian, seed: 8)
            XCTAssertEqual(a, b, "\(kind): same seed, same samples")
            XCTAssertNotEqual(a, c, "\(kind): another seed, other samples")
        }
    }

    /// η = 0 draws no noise: the output depends only on the starting noise, and the generator is untouched.
    func testDeterministicDDIMDrawsNothing() {
        var sampler = DDIMSampler(eta: 0)
        sampler.setTimesteps(25)
        var rng = SeededGenerator(seed: 11)
        let z1 = Tensor.randn([64], generator: &rng)
        let model = analyticModel(gaussian, schedule: .cosine, objective: .v)
        var g1 = SeededGenerator(seed: 1)
        var g2 = SeededGenerator(seed: 2)
        let a = sampler.sample(from: z1, generator: &g1) { z, t, _ in model(z, t) }
        let b = sampler.sample(from: z1, generator: &g2) { z, t, _ in model(z, t) }
        XCTAssertEqual(a.data, b.data)
        XCTAssertEqual(g1, SeededGenerator(seed: 1), "η = 0 must not consume random numbers")
    }

    /// DDIM with η = 1 has the DDPM posterior's variance (eq. 16) and, algebraically, its mean; drawing the
    /// same noise, the two samplers must agree to rounding.
    func testDDIMWithEtaOneMatchesDDPM() {
        let a = run(.ddpm, steps: 30, data: gaussian, seed: 5)
        let b = run(.ddim(1), steps: 30, data: gaussian, seed: 5)
        let maxDiff = zip(a, b).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThan(maxDiff, 1e-3, "max |DDPM − DDIM(η=1)| = \(maxDiff)")
    }

    /// The noise scale multiplies the ancestral noise and nothing else: a step's distance from the noiseless
    /// step (scale 0) doubles with the scale, for the same draws.
    func testNoiseScaleScalesOnlyTheAncestralNoise() {
        var draw = SeededGenerator(seed: 8)
        let (sample, output) = (Tensor.randn([2, 3, 4], generator: &draw), Tensor.randn([2, 3, 4], generator: &draw))
        func step(_ scale: Float) -> [Float] {
            var generator = SeededGenerator(seed: 9)
            return DDPMSampler(noiseScale: scale).step(
                modelOutput: output, time: 0.7, nextTime: 0.6, sample: sample,
                generator: &generator
            ).sample.data
        }
        let (none, one, two) = (step(0), step(1), step(2))
        XCTAssertNotEqual(none, one)
        for i in none.indices { XCTAssertEqual(two[i] - none[i], 2 * (one[i] - none[i]), accuracy: 1e-5) }
    }

    func testTimeGrid() {
        var sampler = DDPMSampler()
        sampler.setTimesteps(4)
        XCTAssertEqual(sampler.timesteps, [1, 0.75, 0.5, 0.25, 0])
        XCTAssertEqual(sampler.steps.count, 4)
        XCTAssertEqual(sampler.steps[0].time, 1)
        XCTAssertEqual(sampler.steps[3].nextTime, 0)
        sampler.setTimesteps(3, startTime: 0.6)
        XCTAssertEqual(sampler.timesteps.first, 0.6)
        XCTAssertEqual(sampler.timesteps.last, 0)
        XCTAssertEqual(sampler.timesteps.count, 4)
    }

    /// The last step returns x0̂; every step returns the x0̂ it used, which the loop hands back to the
    /// model (self-conditioning), nil at the first step.
    func testSelfConditioningGetsThePreviousPrediction() {
        var sampler = DDPMSampler()
        sampler.setTimesteps(5)
        var rng = SeededGenerator(seed: 2)
        let model = analyticModel(gaussian, schedule: .cosine, objective: .v)
        var seen: [Tensor?] = []
        var returned: [Tensor] = []
        let final = sampler.sample(
            from: Tensor.randn([8], generator: &rng), generator: &rng,
            model: { z, t, previous in
                seen.append(previous); return model(z, t)
            },
            onStep: { _, out in returned.append(out.predictedX0) })
        XCTAssertEqual(seen.count, 5)
        XCTAssertNil(seen[0])
        for i in 1..<5 { XCTAssertEqual(seen[i]?.data, returned[i - 1].data) }
        XCTAssertEqual(final.data, returned[4].data, "the last step returns x0̂")
    }

    /// Clipping changes x0̂, and ε̂ is recomputed from it so that DDIM's step stays consistent:
    /// z_s = α_s·x0̂ + σ_s·(z_t − α_t·x0̂)/σ_t for η = 0.
    func testClipAndNormaliseHooks() {
        let schedule = NoiseSchedule.cosine
        let sampler = DDIMSampler(schedule: schedule, objective: .x0, eta: 0, clipX0: 0.5)
        let z = Tensor([0.3, -0.2, 0.9, 0.1], shape: [4])
        let out = Tensor([2.0, -3.0, 0.25, 0.1], shape: [4])  // x0 predictions, two beyond the clip
        var rng = SeededGenerator(seed: 0)
        let result = sampler.step(modelOutput: out, time: 0.6, nextTime: 0.4, sample: z, generator: &rng)
        XCTAssertEqual(result.predictedX0.data, [0.5, -0.5, 0.25, 0.1])
        let (at, st) = schedule.alphaSigma(0.6)
        let (as_, ss) = schedule.alphaSigma(0.4)
        for i in 0..<4 {
            let x = Double(result.predictedX0.data[i])
            let expected = as_ * x + ss * (Double(z.data[i]) - at * x) / st
            XCTAssertEqual(Double(result.sample.data[i]), expected, accuracy: 1e-5)
        }

        let d = 16
        let normalize = rescaleRows(toNorm: Float(d).squareRoot())
        let x = Tensor.randn([3, d], generator: &rng)
        let y = normalize(x)
        for row in 0..<3 {
            let norm = (0..<d).reduce(Float(0)) { $0 + y.data[row * d + $1] * y.data[row * d + $1] }.squareRoot()
            XCTAssertEqual(norm, Float(d).squareRoot(), accuracy: 1e-4)
        }
        let normalising = DDPMSampler(normalizeX0: normalize)
        let step = normalising.step(modelOutput: x, time: 0.3, nextTime: 0.2, sample: x, generator: &rng)
        for row in 0..<3 {
            let norm = (0..<d).reduce(Float(0)) { $0 + step.predictedX0.data[row * d + $1] * step.predictedX0.data[row * d + $1] }
                .squareRoot()
            XCTAssertEqual(norm, Float(d).squareRoot(), accuracy: 1e-4)
        }
    }

    func testClassifierFreeGuidance() {
        let cond = Tensor([1, 2, 3], shape: [3])
        let uncond = Tensor([0, 1, 5], shape: [3])
        XCTAssertEqual(classifierFreeGuidance(conditional: cond, unconditional: uncond, weight: 1).data, cond.data)
        XCTAssertEqual(classifierFreeGuidance(conditional: cond, unconditional: uncond, weight: 0).data, uncond.data)
        XCTAssertEqual(classifierFreeGuidance(conditional: cond, unconditional: uncond, weight: 2).data, [2, 3, 1])
    }

    func testMakeSamplerByName() {
        XCTAssertTrue(makeSampler(.ddpm) is DDPMSampler)
        let ddim = makeSampler(.ddim, eta: 0.3) as? DDIMSampler
        XCTAssertEqual(ddim?.eta, 0.3)
        XCTAssertEqual(SamplerKind(rawValue: "ddim"), .ddim)
    }
}
