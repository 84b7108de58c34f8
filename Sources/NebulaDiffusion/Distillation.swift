import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// What a distilled denoiser records in its `config.json`: it was trained to take `steps` steps of `sampler` where
/// its teacher took `teacherSteps`, and it samples well with that sampler at that count only.
public struct DistillationRecord: Codable, Equatable, Sendable {
    /// The steps the denoiser was distilled for.
    public var steps: Int
    /// The teacher's steps (twice `steps`).
    public var teacherSteps: Int
    /// The sampler of teacher and student: ddim (deterministic) or ddpm (ancestral).
    public var sampler: SamplerKind
    /// The ddpm sampler's noise temperature (1 for ddim).
    public var noiseScale: Float
    /// Whether teacher and student renormalise every x0 estimate, as the sampler does by default.
    public var renormalizeEstimates: Bool

    public init(steps: Int, teacherSteps: Int, sampler: SamplerKind, noiseScale: Float, renormalizeEstimates: Bool) {
        (self.steps, self.teacherSteps, self.sampler) = (steps, teacherSteps, sampler)
        (self.noiseScale, self.renormalizeEstimates) = (sampler == .ddim ? 1 : noiseScale, renormalizeEstimates)
    }

    enum CodingKeys: String, CodingKey {
        case steps, teacherSteps = "teacher_steps", sampler, noiseScale = "noise_scale", renormalizeEstimates = "renormalize_estimates"
    }
}

/// One round of progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
/// Diffusion Models"): a student, started from its teacher's weights, learns to take in one step what the teacher
/// takes in two, so a round halves the steps.
///
/// Every step of both samplers is linear in the sample and the x0 estimate: z_s = a·z_t + b·x0̂ (+ noise). For a
/// latent noised to a time t of the student's grid (t = i/S), the teacher takes two steps t → t − 1/2S → t − 1/S
/// and lands on z''; the student's loss is the squared distance from its own single step t → t − 1/S to z'', that
/// is b²·|x0̂ − x̃|² for the paper's target x̃ = (z'' − a·z)/b. Weighting by b² keeps the steps where x0̂ hardly
/// moves the sample (b small, at high noise) from blowing up the target. With ddim (deterministic) that is the
/// paper's method. With ddpm (ancestral), the teacher's first step draws its noise and its second lands on its
/// mean: the regression learns the teacher's mean over the first step's noise (each target averages an antithetic
/// pair of draws), and the student's own step adds its noise back at sampling. Unconditional only: the
/// student never sees the preceding passage. The self-conditioning input, as in training, is zero half the time
/// and otherwise the teacher's own estimate at the same noisy latent.
public final class DistillationTask: TrainingTask {
    /// The student's config: the teacher's, with ``LatentDiffusionConfig/distillation`` set.
    public let config: LatentDiffusionConfig
    public let teacher: Denoiser
    public let student: Denoiser
    private let latents: Tensor  // [N, K, d]
    private let validation: Tensor?  // [M, K, d]

    /// - Parameters:
    ///   - config: the teacher's config with `distillation` (the student's steps) set.
    ///   - teacher: the teacher's denoiser (its sampling weights); it is not trained.
    ///   - student: a denoiser of the same shape, to be trained (start it from the teacher's weights).
    ///   - latents: training latents `[N, K, d]`; `validation` held-out ones.
    public init(config: LatentDiffusionConfig, teacher: Denoiser, student: Denoiser, latents: Tensor, validation: Tensor?) {
        precondition(config.distillation != nil, "DistillationTask: the config must record the student's steps")
        (self.config, self.teacher, self.student, self.latents, self.validation) = (config, teacher, student, latents, validation)
        teacher.eval()
    }

    var record: DistillationRecord { config.distillation! }
    public var trainable: Module { student }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let rows = (0..<batchSize).map { _ in generator.nextInt(below: latents.shape[0]) }
        let grid = (0..<batchSize).map { _ in 1 + generator.nextInt(below: record.steps) }
        let selfCondition = (0..<batchSize).map { _ in generator.nextUniform() < config.selfConditioningRate }
        let noise = Tensor.randn([batchSize] + Array(latents.shape.dropFirst()), generator: &generator)
        return distillationLoss(
            x0: latents.rows(rows), noise: noise, grid: grid, selfCondition: selfCondition, model: student, generator: &generator)
    }

    /// How far `model`'s one step lands from the teacher's two, for `x0` noised with `noise` at the student's grid
    /// points `grid` (time i/S for i in `grid`): the mean squared distance between the points, over the batch's mean
    /// squared weight of x0̂ in a step (so it reads in units of x0); the teacher's ancestral noise, if any, is drawn
    /// from `generator`.
    func distillationLoss(
        x0: Tensor, noise: Tensor, grid: [Int], selfCondition: [Bool], model: Denoiser, generator: inout SeededGenerator
    ) -> Tensor {
        let s = Float(record.steps)
        let (times, next) = (grid.map { Float($0) / s }, grid.map { Float($0 - 1) / s })
        let z = config.schedule.noised(x0, noise: noise, times: times)  // [B, K, d]
        let (previous, landing) = withNoGrad { target(z, grid: grid, selfCondition: selfCondition, generator: &generator) }
        let step = stepCoefficients(from: times, to: next)
        let estimate = estimate(model, z, times: times, previous: previous)
        let weight = step.fromX0.data.map { $0 * $0 }.reduce(0, +) / Float(grid.count)
        return (step.fromZ * z + step.fromX0 * estimate - landing).squared().mean() / weight
    }

    /// For noisy latents `z` `[B, K, d]` at the student's grid points `grid`: the self-conditioning input (zero, or
    /// the teacher's estimate at z itself where `selfCondition` says) and where the teacher's two steps
    /// t → t − 1/2S → t − 1/S land given that input (the second step's mean; with ddpm noise, the average of the
    /// landings from an antithetic pair of first-step draws).
    func target(_ z: Tensor, grid: [Int], selfCondition: [Bool], generator: inout SeededGenerator) -> (
        selfCondition: Tensor, landing: Tensor
    ) {
        let s = Float(record.steps)
        let (times, halfway, next) = (grid.map { Float($0) / s }, grid.map { (Float($0) - 0.5) / s }, grid.map { Float($0 - 1) / s })
        let zeros = Tensor.zeros(z.shape)
        var previous = zeros
        if config.network.selfConditioning, selfCondition.contains(true) {
            let own = estimate(teacher, z, times: times, previous: zeros)
            previous = Tensor.concatenate((0..<z.shape[0]).map { selfCondition[$0] ? own.rows([$0]) : zeros.rows([$0]) }, axis: 0)
        }
        let first = estimate(teacher, z, times: times, previous: previous)
        let toHalfway = stepCoefficients(from: times, to: halfway)
        let toNext = stepCoefficients(from: halfway, to: next)
        let mean = toHalfway.fromZ * z + toHalfway.fromX0 * first
        guard record.sampler == .ddpm && record.noiseScale > 0 else {
            let second = estimate(teacher, mean, times: halfway, previous: first)
            return (previous, toNext.fromZ * mean + toNext.fromX0 * second)
        }
        // Antithetic draws: the landings from +n and −n, averaged, cancel the noise's first-order part, which would
        // otherwise swamp the loss (the student cannot predict the draw).
        let n = toHalfway.noise * Tensor.randn(z.shape, generator: &generator)
        let zHalf = Tensor.concatenate([mean + n, mean - n], axis: 0)  // [2B, K, d]
        let second = estimate(teacher, zHalf, times: halfway + halfway, previous: Tensor.concatenate([first, first], axis: 0))
        let both =
            (Tensor.concatenate([toNext.fromZ, toNext.fromZ], axis: 0) * zHalf
            + Tensor.concatenate([toNext.fromX0, toNext.fromX0], axis: 0) * second).split(axis: 0, sizes: [z.shape[0], z.shape[0]])
        return (previous, (both[0] + both[1]) * 0.5)
    }

    /// A denoiser's x0 estimate `[B, K, d]` at `z`, renormalised when the sampler renormalises.
    func estimate(_ model: Denoiser, _ z: Tensor, times: [Float], previous: Tensor) -> Tensor {
        let output = model(z, times: times, selfCondition: config.network.selfConditioning ? previous : nil)
        let (alpha, sigma) = config.schedule.alphaSigma(times: times, rank: 3)
        let x0 = config.objective.predictions(modelOutput: output, sample: z, alpha: alpha, sigma: sigma).x0
        return record.renormalizeEstimates ? layerNorm(x0, weight: nil, bias: nil) : x0
    }

    /// The record's sampler step from each row's time to its next, `[B, 1, 1]` coefficients of
    /// z_s = fromZ·z_t + fromX0·x0̂ + noise·n, as ``DDIMSampler`` (η = 0) and ``DDPMSampler`` (posterior variance)
    /// take it; a step to time 0 returns x0̂ itself.
    func stepCoefficients(from: [Float], to: [Float]) -> (fromZ: Tensor, fromX0: Tensor, noise: Tensor) {
        var (fromZ, fromX0, noise) = ([Float](), [Float](), [Float]())
        for (time, nextTime) in zip(from, to) {
            guard nextTime > 0 else {
                (fromZ, fromX0, noise) = (fromZ + [0], fromX0 + [1], noise + [0])
                continue
            }
            let (t, s) = (Double(time), Double(nextTime))
            let ((alphaT, sigmaT), (alphaS, sigmaS)) = (config.schedule.alphaSigma(t), config.schedule.alphaSigma(s))
            switch record.sampler {
            case .ddim:  // z_s = α_s·x0̂ + σ_s·(z_t − α_t·x0̂)/σ_t
                (fromZ, fromX0, noise) = (
                    fromZ + [Float(sigmaS / sigmaT)], fromX0 + [Float(alphaS - sigmaS * alphaT / sigmaT)], noise + [0]
                )
            case .ddpm:  // the posterior q(z_s | z_t, x0̂), as DDPMSampler.step
                let c = -Foundation.expm1(config.schedule.logSNR(t) - config.schedule.logSNR(s))
                fromZ.append(Float((alphaT / alphaS) * (sigmaS * sigmaS) / (sigmaT * sigmaT)))
                fromX0.append(Float(alphaS * c))
                noise.append(Float((c * sigmaS * sigmaS).squareRoot()) * record.noiseScale)
            }
        }
        let shape = [from.count, 1, 1]
        return (Tensor(shape: shape, data: fromZ), Tensor(shape: shape, data: fromX0), Tensor(shape: shape, data: noise))
    }

    /// The distillation loss on held-out latents at fixed grid points, noise and self-conditioning choices.
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard let validation else { return [:] }
        var generator = SeededGenerator(seed: 0x5EED)
        var total: Float = 0
        let m = validation.shape[0]
        withNoGrad {
            for b in 0..<batches {
                let rows = (0..<batchSize).map { (b * batchSize + $0) % m }
                let grid = (0..<batchSize).map { _ in 1 + generator.nextInt(below: record.steps) }
                let selfCondition = (0..<batchSize).map { _ in generator.nextUniform() < config.selfConditioningRate }
                let x0 = validation.rows(rows)
                let noise = Tensor.randn(x0.shape, generator: &generator)
                total +=
                    distillationLoss(x0: x0, noise: noise, grid: grid, selfCondition: selfCondition, model: student, generator: &generator)
                    .item
            }
        }
        return ["val_loss": Double(total) / Double(batches)]
    }

    /// Writes `config.json` and `model.safetensors` (the student's weights: a round is too short for an average).
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ModelFolder.writeConfig(config, in: directory)
        try student.save(safetensors: directory.appendingPathComponent(ModelFolder.weights))
    }

    public func restore(from directory: URL) throws {
        try student.load(safetensors: directory.appendingPathComponent(ModelFolder.weights))
    }
}
