// Samplers: the reverse process, separate from any model (as diffusers' schedulers are).
//
// A sampler turns the denoiser's output at time t into a sample at an earlier time s < t:
//
//     var sampler = DDIMSampler(eta: 0)
//     sampler.setTimesteps(50)
//     for (t, s) in sampler.steps {
//         let out = sampler.step(modelOutput: model(z, t), time: t, nextTime: s, sample: z, generator: &rng)
//         z = out.sample
//     }
//
// Time runs from 1 (pure noise) to 0 (data). The samplers work on plain Float arrays: they need no
// gradients, and every coefficient is computed in Double from the schedule's log-SNR.
import Foundation
import NebulaTensor

/// What one sampler step returns.
public struct SamplerOutput {
    /// The sample at `nextTime`; at the last step (`nextTime == 0`) it is the prediction x0̂ itself.
    public var sample: Tensor
    /// The prediction x0̂ the step used (after any clipping / normalising): keep it to feed the
    /// denoiser's self-conditioning input at the next step, or to show the text as it condenses.
    public var predictedX0: Tensor
}

/// The samplers Nebula offers, by name (for configuration files and the command line).
public enum SamplerKind: String, Codable, Sendable, CaseIterable {
    case ddpm, ddim
}

/// A reverse-process sampler: a time grid (`setTimesteps`) and one update (`step`).
public protocol DiffusionSampler {
    /// The noise schedule the denoiser was trained with.
    var schedule: NoiseSchedule { get }
    /// What the denoiser predicts.
    var objective: Objective { get }
    /// If set, x0̂ is clamped to [−clip, clip] before it is used.
    var clipX0: Float? { get }
    /// If set, applied to x0̂ (after any clip) before it is used, e.g. ``rescaleRows(toNorm:)``.
    var normalizeX0: ((Tensor) -> Tensor)? { get }
    /// The decreasing time grid set by `setTimesteps`: `n + 1` values from the start time down to 0;
    /// step i goes from `timesteps[i]` to `timesteps[i + 1]`.
    var timesteps: [Float] { get }

    /// Sets an evenly spaced grid of `count` steps from `startTime` (1 = pure noise; less than 1 to
    /// denoise a partly noised sample, as editing does) down to 0.
    mutating func setTimesteps(_ count: Int, startTime: Float)

    /// One reverse step from `time` to `nextTime` (< `time`) given the model's output on `sample`
    /// (z at `time`). Draws its noise, if any, from `generator`.
    func step(
        modelOutput: Tensor, time: Float, nextTime: Float, sample: Tensor,
        generator: inout SeededGenerator
    ) -> SamplerOutput
}

extension DiffusionSampler {
    /// Sets an evenly spaced grid of `count` steps from t = 1 down to 0.
    public mutating func setTimesteps(_ count: Int) { setTimesteps(count, startTime: 1) }

    /// The (time, nextTime) pairs of the grid, in sampling order.
    public var steps: [(time: Float, nextTime: Float)] {
        guard timesteps.count > 1 else { return [] }
        return (0..<(timesteps.count - 1)).map { (timesteps[$0], timesteps[$0 + 1]) }
    }

    /// Runs the whole grid from `initial` (z at the first grid time, usually standard normal noise).
    ///
    /// `model(z, t, previousX0)` returns the denoiser's output for the current sample; `previousX0` is
    /// the previous step's x0̂ (nil at the first step), for self-conditioning. `onStep(i, output)` is
    /// called after every step. With `known` latent vectors (infilling), each step starts from a sample whose
    /// known vectors are their latents noised to the step's time, is taken `known.resample` times (re-noised
    /// back between tries, as RePaint does), and the result ends with the known vectors exactly.
    ///
    /// ```swift
    /// var sampler = DDPMSampler()
    /// sampler.setTimesteps(250)
    /// var rng = SeededGenerator(seed: 1)
    /// let z1 = Tensor.randn([4, 32, 64], generator: &rng)
    /// let x0 = sampler.sample(from: z1, generator: &rng) { z, t, _ in denoiser(z, t) }
    /// ```
    public func sample(
        from initial: Tensor, known: KnownLatents? = nil, generator: inout SeededGenerator,
        model: (_ sample: Tensor, _ time: Float, _ previousX0: Tensor?) -> Tensor,
        onStep: ((_ index: Int, _ output: SamplerOutput) -> Void)? = nil
    ) -> Tensor {
        precondition(!timesteps.isEmpty, "sample: call setTimesteps first")
        var z = initial
        var previousX0: Tensor? = nil
        for (i, pair) in steps.enumerated() {
            var result: SamplerOutput
            var tries = 0
            repeat {
                if let known { z = known.imposed(on: z, time: pair.time, schedule: schedule, generator: &generator) }
                let output = withNoGrad { model(z, pair.time, previousX0) }
                result = step(
                    modelOutput: output, time: pair.time, nextTime: pair.nextTime, sample: z,
                    generator: &generator)
                tries += 1
                if let known, tries < known.resample {
                    z = schedule.renoised(result.sample, from: pair.nextTime, to: pair.time, generator: &generator)
                }
            } while tries < (known?.resample ?? 1)
            z = result.sample
            previousX0 = result.predictedX0
            onStep?(i, result)
        }
        if let known { z = known.imposed(on: z, time: 0, schedule: schedule, generator: &generator) }
        return z
    }

    /// x0̂ and ε̂ from a model output on `sample` at coefficients (α, σ), with the optional clip and
    /// normalisation of x0̂ applied; when x0̂ is changed, ε̂ is recomputed from it,
    /// ε̂ = (z − α·x0̂)/σ, so that z = α·x0̂ + σ·ε̂ still holds (as diffusers does after clipping).
    func denoise(modelOutput: Tensor, sample: Tensor, alpha: Double, sigma: Double)
        -> (x0: [Float], epsilon: [Float])
    {
        precondition(
            modelOutput.shape == sample.shape,
            "step: model output \(modelOutput.shape) and sample \(sample.shape) differ")
        var (x0, eps) = objective.predictions(
            modelOutput: modelOutput.data, sample: sample.data,
            alpha: alpha, sigma: sigma)
        guard clipX0 != nil || normalizeX0 != nil else { return (x0, eps) }
        if let c = clipX0 { x0 = x0.map { min(max($0, -c), c) } }
        if let normalize = normalizeX0 {
            let out = normalize(Tensor(shape: sample.shape, data: x0))
            precondition(out.shape == sample.shape, "normalizeX0 must keep the shape")
            x0 = out.data
        }
        let z = sample.data
        let (a, s) = (Float(alpha), Float(sigma))
        for i in 0..<z.count { eps[i] = (z[i] - a * x0[i]) / s }
        return (x0, eps)
    }
}

/// An evenly spaced decreasing grid of `count + 1` times from `startTime` to 0.
func timeGrid(_ count: Int, startTime: Float) -> [Float] {
    precondition(count >= 1, "setTimesteps: at least one step is needed")
    precondition(startTime > 0 && startTime <= 1, "setTimesteps: startTime must be in (0, 1]")
    let start = Double(startTime)
    return (0...count).map { Float(start * Double(count - $0) / Double(count)) }
}

// MARK: - DDPM

/// The ancestral sampler (DDPM, Ho et al. 2020) in continuous time: each step draws z_s from the
/// forward process' posterior q(z_s | z_t, x = x0̂) (Kingma et al. 2021, "Variational Diffusion
/// Models", §3.2 and appendix A), with x0̂ the model's prediction. The last step returns x0̂.
///
/// The noise variance is the posterior's, σ_Q² (`.posterior`, the default, as VDM and LD4LG), or the
/// forward step's, σ²_{t|s} (`.forward`): Ho et al. 2020 §3.2's two choices β̃_t and β_t, optimal for a
/// deterministic x0 and for x0 ~ N(0, I) respectively. With few steps `.posterior` gives too little
/// variance and `.forward` too much; both converge as the steps grow.
///
/// ```swift
/// var sampler = DDPMSampler(schedule: .cosine, objective: .v)
/// sampler.setTimesteps(250)
/// let x0 = sampler.sample(from: noise, generator: &rng) { z, t, x0Prev in model(z, t, x0Prev) }
/// ```
public struct DDPMSampler: DiffusionSampler {
    /// Which variance the ancestral step draws its noise with.
    public enum Variance: String, Codable, Sendable, CaseIterable {
        /// σ_Q² = σ²_{t|s}·σ_s²/σ_t² (Ho et al.'s β̃_t): the posterior of q(z_s | z_t, x0).
        case posterior
        /// σ²_{t|s} = σ_t² − α²_{t|s}·σ_s² (Ho et al.'s β_t): the forward step's variance.
        case forward
    }

    public var schedule: NoiseSchedule
    public var objective: Objective
    public var variance: Variance
    public var clipX0: Float?
    public var normalizeX0: ((Tensor) -> Tensor)?
    /// The temperature of the ancestral noise: each step's noise std is multiplied by it. 1 samples the
    /// model's own distribution; below 1 gives sharper, less varied samples, above 1 more varied, less fluent ones.
    public var noiseScale: Float
    public private(set) var timesteps: [Float] = []

    public init(
        schedule: NoiseSchedule = .cosine, objective: Objective = .v, variance: Variance = .posterior,
        clipX0: Float? = nil, normalizeX0: ((Tensor) -> Tensor)? = nil, noiseScale: Float = 1
    ) {
        self.schedule = schedule
        self.objective = objective
        self.variance = variance
        self.clipX0 = clipX0
        self.normalizeX0 = normalizeX0
        self.noiseScale = noiseScale
    }

    public mutating func setTimesteps(_ count: Int, startTime: Float) {
        timesteps = timeGrid(count, startTime: startTime)
    }

    public func step(
        modelOutput: Tensor, time: Float, nextTime: Float, sample: Tensor,
        generator: inout SeededGenerator
    ) -> SamplerOutput {
        precondition(nextTime < time, "step: nextTime (\(nextTime)) must be below time (\(time))")
        // 1. noise levels at t and at the previous (less noisy) time s: α² = sigmoid(λ), σ² = sigmoid(−λ)
        let (t, s) = (Double(time), Double(max(nextTime, 0)))
        let (alphaT, sigmaT) = schedule.alphaSigma(t)

        // 2. x0̂ from the model output (Objective conversions), clipped / normalised if asked
        let (x0, _) = denoise(modelOutput: modelOutput, sample: sample, alpha: alphaT, sigma: sigmaT)
        let x0Tensor = Tensor(shape: sample.shape, data: x0)

        // 3. the last step: return the prediction itself, without noise
        if nextTime <= 0 { return SamplerOutput(sample: x0Tensor, predictedX0: x0Tensor) }

        // 4. posterior q(z_s | z_t, x) = N(μ_Q, σ_Q²) (VDM §3.2), with α_{t|s} = α_t/α_s and
        //    σ²_{t|s} = σ_t² − α²_{t|s}·σ_s²:
        //      μ_Q  = (α_{t|s}·σ_s²/σ_t²)·z_t + (α_s·σ²_{t|s}/σ_t²)·x
        //      σ_Q² = σ²_{t|s}·σ_s²/σ_t²
        //    written with c = σ²_{t|s}/σ_t² = 1 − SNR(t)/SNR(s) = −expm1(λ_t − λ_s), stable for small steps.
        let (alphaS, sigmaS) = schedule.alphaSigma(s)
        let c = -Foundation.expm1(schedule.logSNR(t) - schedule.logSNR(s))
        let fromZ = Float((alphaT / alphaS) * (sigmaS * sigmaS) / (sigmaT * sigmaT))  // α_{t|s}·σ_s²/σ_t²
        let fromX0 = Float(alphaS * c)  // α_s·σ²_{t|s}/σ_t²
        let noiseVariance =
            variance == .posterior
            ? c * sigmaS * sigmaS  // σ_Q²
            : c * sigmaT * sigmaT  // σ²_{t|s}
        let noiseStd = Float(noiseVariance.squareRoot()) * noiseScale

        // 5. z_s = μ_Q + σ·n,  n ~ N(0, I)
        let z = sample.data
        var next = [Float](repeating: 0, count: z.count)
        for i in 0..<z.count {
            next[i] = fromZ * z[i] + fromX0 * x0[i] + noiseStd * generator.nextGaussian()
        }
        return SamplerOutput(sample: Tensor(shape: sample.shape, data: next), predictedX0: x0Tensor)
    }
}

// MARK: - DDIM

/// The DDIM sampler (Song et al. 2021, "Denoising Diffusion Implicit Models"): η = 0 is deterministic
/// (the same noise always gives the same sample), η = 1 has the DDPM posterior's variance, values in
/// between interpolate. The last step returns x0̂.
///
/// ```swift
/// var sampler = DDIMSampler(eta: 0)
/// sampler.setTimesteps(50)
/// let x0 = sampler.sample(from: noise, generator: &rng) { z, t, _ in model(z, t) }
/// ```
public struct DDIMSampler: DiffusionSampler {
    public var schedule: NoiseSchedule
    public var objective: Objective
    /// The stochasticity η of eq. 16: 0 deterministic, 1 ancestral (DDPM-like).
    public var eta: Double
    public var clipX0: Float?
    public var normalizeX0: ((Tensor) -> Tensor)?
    public private(set) var timesteps: [Float] = []

    public init(
        schedule: NoiseSchedule = .cosine, objective: Objective = .v, eta: Double = 0,
        clipX0: Float? = nil, normalizeX0: ((Tensor) -> Tensor)? = nil
    ) {
        precondition(eta >= 0, "DDIMSampler: eta must be non-negative")
        self.schedule = schedule
        self.objective = objective
        self.eta = eta
        self.clipX0 = clipX0
        self.normalizeX0 = normalizeX0
    }

    public mutating func setTimesteps(_ count: Int, startTime: Float) {
        timesteps = timeGrid(count, startTime: startTime)
    }

    public func step(
        modelOutput: Tensor, time: Float, nextTime: Float, sample: Tensor,
        generator: inout SeededGenerator
    ) -> SamplerOutput {
        precondition(nextTime < time, "step: nextTime (\(nextTime)) must be below time (\(time))")
        // 1. noise levels at t and at the previous (less noisy) time s. In the paper's notation
        //    √ᾱ_t = α_t and √(1 − ᾱ_t) = σ_t.
        let (t, s) = (Double(time), Double(max(nextTime, 0)))
        let (alphaT, sigmaT) = schedule.alphaSigma(t)
        let (alphaS, sigmaS) = schedule.alphaSigma(s)

        // 2. "predicted x_0" and the noise estimate ε̂ from the model output (eq. 12; Objective
        //    conversions), x0̂ clipped / normalised if asked (ε̂ then recomputed from it)
        let (x0, eps) = denoise(modelOutput: modelOutput, sample: sample, alpha: alphaT, sigma: sigmaT)
        let x0Tensor = Tensor(shape: sample.shape, data: x0)

        // 3. the last step: return the prediction itself, without noise
        if nextTime <= 0 { return SamplerOutput(sample: x0Tensor, predictedX0: x0Tensor) }

        // 4. σ_t(η) = η·√((1 − ᾱ_{t−1})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t−1})   (eq. 16)
        let ratio = (alphaT * alphaT) / (alphaS * alphaS)  // ᾱ_t/ᾱ_{t−1}
        let stdDev = eta * (sigmaS / sigmaT) * max(1 - ratio, 0).squareRoot()

        // 5. "direction pointing to x_t": √(1 − ᾱ_{t−1} − σ_t(η)²)·ε̂   (eq. 12)
        let direction = max(sigmaS * sigmaS - stdDev * stdDev, 0).squareRoot()

        // 6. x_{t−1} = √ᾱ_{t−1}·x0̂ + direction + σ_t(η)·n,  n ~ N(0, I)   (eq. 12)
        let (fromX0, fromEps, noiseStd) = (Float(alphaS), Float(direction), Float(stdDev))
        var next = [Float](repeating: 0, count: x0.count)
        if eta == 0 {
            for i in 0..<x0.count { next[i] = fromX0 * x0[i] + fromEps * eps[i] }
        } else {
            for i in 0..<x0.count {
                next[i] = fromX0 * x0[i] + fromEps * eps[i] + noiseStd * generator.nextGaussian()
            }
        }
        return SamplerOutput(sample: Tensor(shape: sample.shape, data: next), predictedX0: x0Tensor)
    }
}

// MARK: - Construction by name, guidance, normalisation

/// A sampler by kind: `eta` is used by DDIM only.
///
/// ```swift
/// var sampler = makeSampler(.ddim, schedule: config.schedule, objective: .v, eta: 0)
/// sampler.setTimesteps(50)
/// ```
public func makeSampler(
    _ kind: SamplerKind, schedule: NoiseSchedule = .cosine, objective: Objective = .v,
    eta: Double = 0, normalizeX0: ((Tensor) -> Tensor)? = nil, noiseScale: Float = 1
) -> any DiffusionSampler {
    switch kind {
    case .ddpm: return DDPMSampler(schedule: schedule, objective: objective, normalizeX0: normalizeX0, noiseScale: noiseScale)
    case .ddim: return DDIMSampler(schedule: schedule, objective: objective, eta: eta, normalizeX0: normalizeX0)
    }
}

/// Classifier-free guidance (Ho & Salimans 2022): guided = uncond + w·(cond − uncond).
/// w = 1 is the plain conditional output, w = 0 the unconditional one, w > 1 pushes further towards
/// the condition. Apply it to the model outputs (any objective: the conversions are linear).
///
/// ```swift
/// let out = classifierFreeGuidance(conditional: model(z, t, prompt), unconditional: model(z, t, nil), weight: 2)
/// ```
public func classifierFreeGuidance(conditional: Tensor, unconditional: Tensor, weight: Float) -> Tensor {
    precondition(conditional.shape == unconditional.shape, "guidance: the two outputs' shapes differ")
    let (c, u) = (conditional.data, unconditional.data)
    var guided = [Float](repeating: 0, count: c.count)
    for i in 0..<c.count { guided[i] = u[i] + weight * (c[i] - u[i]) }
    return Tensor(shape: conditional.shape, data: guided)
}

/// A `normalizeX0` hook that rescales every vector along the last axis to Euclidean norm `norm`
/// (Nebula's latents are normalised per vector to norm √d). A zero vector is left as it is.
///
/// ```swift
/// let sampler = DDPMSampler(normalizeX0: rescaleRows(toNorm: Float(64).squareRoot()))
/// ```
public func rescaleRows(toNorm norm: Float) -> (Tensor) -> Tensor {
    { x in
        let d = x.shape.last ?? 1
        var data = x.data
        guard d > 0 else { return x }
        for start in stride(from: 0, to: data.count, by: d) {
            var sumSquares: Float = 0
            for i in start..<(start + d) { sumSquares += data[i] * data[i] }
            guard sumSquares > 0 else { continue }
            let factor = norm / sumSquares.squareRoot()
            for i in start..<(start + d) { data[i] *= factor }
        }
        return Tensor(shape: x.shape, data: data)
    }
}
