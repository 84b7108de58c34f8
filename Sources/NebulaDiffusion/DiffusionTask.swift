import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Stage 3's training task on precomputed latents: noise a passage's latent at a random time and
/// regress the objective's target (v by default), with self-conditioning (p = 0.5), the preceding
/// passage's latent as the condition (dropped with p = 0.1, and always for a document's first passage),
/// and an exponential moving average of the weights used for sampling.
public final class DiffusionTask: TrainingTask {
    public let config: LatentDiffusionConfig
    public let denoiser: Denoiser
    public let ema: EMA
    private let latents: Tensor  // [N, K, d]
    private let previous: [Int?]  // index of the preceding passage of the same document
    private let validation: Tensor?  // [M, K, d]
    /// The training latents' mean and covariance, fitted at the first evaluation: the linear denoiser's loss is
    /// logged beside the denoiser's (`val_loss_gaussian`).
    private lazy var gaussian = GaussianLatentModel(latents: latents)

    public init(config: LatentDiffusionConfig, denoiser: Denoiser, latents: Tensor, previous: [Int?], validation: Tensor?) {
        precondition(latents.shape[0] == previous.count, "DiffusionTask: \(previous.count) links for \(latents.shape[0]) latents")
        self.config = config
        self.denoiser = denoiser
        self.latents = latents
        self.previous = previous
        self.validation = validation
        ema = EMA(denoiser, decay: config.emaDecay)
    }

    public var trainable: Module { denoiser }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let rows = (0..<batchSize).map { _ in generator.nextInt(below: latents.shape[0]) }
        let x0 = latents.rows(rows)
        let times = (0..<batchSize).map { _ in generator.nextUniform() }
        let conditional = denoiser.config.contextWidth > 0
        let dropped = rows.map { previous[$0] == nil || generator.nextUniform() < config.conditionDropout }
        let context = conditional ? latents.rows(rows.map { previous[$0] ?? $0 }) : nil
        let known =
            denoiser.config.knownLatents
            ? rows.map { _ in
                generator.nextUniform() < config.knownLatentsRate ? Self.knownSpan(latents: x0.shape[1], generator: &generator) : nil
            } : nil
        let selfCondition = generator.nextUniform() < config.selfConditioningRate
        return denoisingLoss(
            x0: x0, noise: Tensor.randn(x0.shape, generator: &generator), times: times, context: context,
            drop: conditional ? dropped : nil, known: known, model: denoiser, selfCondition: selfCondition)
    }

    /// Which of `k` latent vectors are known in a training passage that has some: all but one span of 1 to k − 1
    /// vectors, anywhere (a gap between a prefix and a suffix, or at either end: a continuation, a beginning).
    public static func knownSpan(latents k: Int, generator: inout SeededGenerator) -> [Bool] {
        precondition(k >= 2, "knownSpan: a span needs at least two latent vectors, got \(k)")
        let length = 1 + generator.nextInt(below: k - 1)
        let start = generator.nextInt(below: k - length + 1)
        return (0..<k).map { $0 < start || $0 >= start + length }
    }

    /// The mean squared error of the objective for `x0` noised with `noise` at `times`, over the vectors to denoise:
    /// a row with `known` vectors (given to the denoiser clean, as well as noised in its sample) is scored on the
    /// others only.
    func denoisingLoss(
        x0: Tensor, noise: Tensor, times: [Float], context: Tensor?, drop: [Bool]?, known: [[Bool]?]? = nil, model: Denoiser,
        selfCondition: Bool
    ) -> Tensor {
        let (alpha, sigma) = config.schedule.alphaSigma(times: times, rank: 3)  // [B, 1, 1] each
        let z = x0 * alpha + noise * sigma
        let (b, k) = (x0.shape[0], x0.shape[1])
        let masks = known.map { rows in rows.map { $0 ?? [Bool](repeating: false, count: k) } }
        let knownInput = masks.map { Denoiser.knownInput(latents: x0, known: $0) }  // [B, K, d + 1]
        var estimate: Tensor? = nil
        if selfCondition && config.network.selfConditioning {
            estimate = withNoGrad {
                let first = model(z, times: times, context: context, dropContext: drop, known: knownInput)
                return config.objective.predictions(modelOutput: first, sample: z, alpha: alpha, sigma: sigma).x0.detached()
            }
        }
        let output = model(z, times: times, selfCondition: estimate, context: context, dropContext: drop, known: knownInput)
        let target = config.objective.target(x0: x0, noise: noise, alpha: alpha, sigma: sigma)
        guard let masks, masks.contains(where: { $0.contains(true) }) else { return (output - target).squared().mean() }
        let scored = masks.flatMap { $0.map { $0 ? Float(0) : 1 } }
        let weights = Tensor(shape: [b, k, 1], data: scored)  // 1 on the vectors to denoise
        return ((output - target).squared() * weights).sum() * (1 / (scored.reduce(0, +) * Float(x0.shape[2])))
    }

    public func afterStep(_ step: Int) { ema.update(denoiser) }

    /// Loss of the EMA weights on held-out latents at fixed times and noise (unconditional), and the linear
    /// denoiser's loss on the same latents, times and noise (``GaussianLatentModel``), and the loss on a random span
    /// of each latent with the rest known (`val_loss_infill`: known clean to a denoiser with a mask channel, only
    /// through their noised values to one without).
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard let validation else { return [:] }
        var generator = SeededGenerator(seed: 0x5EED)
        var rng = SeededGenerator(seed: 1)
        let averaged = Denoiser(config.network, generator: &rng)
        ema.copy(to: averaged)
        var total: Float = 0, infill: Float = 0, linear = 0.0
        let m = validation.shape[0]
        let conditional = denoiser.config.contextWidth > 0
        for b in 0..<batches {
            let rows = (0..<batchSize).map { (b * batchSize + $0) % m }
            let times = (0..<batchSize).map { _ in generator.nextUniform() }
            let drop = [Bool](repeating: true, count: batchSize)
            let x0 = validation.rows(rows)
            let noise = Tensor.randn(x0.shape, generator: &generator)
            total +=
                denoisingLoss(
                    x0: x0, noise: noise, times: times, context: nil, drop: conditional ? drop : nil, model: averaged,
                    selfCondition: false
                ).item
            let known = rows.map { _ in Self.knownSpan(latents: x0.shape[1], generator: &generator) }
            infill +=
                denoisingLoss(
                    x0: x0, noise: noise, times: times, context: nil, drop: conditional ? drop : nil, known: known,
                    model: averaged, selfCondition: false
                ).item
            linear += gaussian.linearDenoiserLoss(
                x0: x0, noise: noise, times: times, schedule: config.schedule, objective: config.objective)
        }
        return [
            "val_loss": Double(total) / Double(batches), "val_loss_infill": Double(infill) / Double(batches),
            "val_loss_gaussian": linear / Double(batches)
        ]
    }

    /// Writes `config.json`, `model.safetensors` (the EMA weights, used for sampling) and
    /// `raw.safetensors` (the current weights, for resuming).
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ModelFolder.writeConfig(config, in: directory)
        try denoiser.save(safetensors: directory.appendingPathComponent("raw.safetensors"))
        let entries = denoiser.namedParameters().map {
            SafeTensorsEntry(name: $0.0, shape: $0.1.shape, floats: ema.shadow[$0.0]!)
        }
        try writeSafeTensors(
            entries, metadata: ["format": "pt", "weights": "ema"], to: directory.appendingPathComponent(ModelFolder.weights))
    }

    /// Reads the weights and their average from a denoiser folder (an exported folder has only the average: both
    /// start from it). A folder without a mask channel starts a denoiser with one: the channel's projection stays
    /// zero, so it starts as the folder's denoiser.
    public func restore(from directory: URL) throws {
        let grown = ["knownProjection."]
        try denoiser.load(safetensors: directory.appendingPathComponent(ModelFolder.weights), keeping: grown)
        ema.reset(to: denoiser)  // the average, from model.safetensors
        let raw = directory.appendingPathComponent("raw.safetensors")
        if FileManager.default.fileExists(atPath: raw.path) { try denoiser.load(safetensors: raw, keeping: grown) }
    }

    /// The average of the weights, `ema.<name>`.
    public func checkpointExtras() -> [SafeTensorsEntry] {
        denoiser.namedParameters().map { SafeTensorsEntry(name: "ema.\($0.0)", shape: $0.1.shape, floats: ema.shadow[$0.0]!) }
    }

    public func restoreExtras(from state: SafeTensorsFile) throws {
        guard state.info("weights.\(denoiser.namedParameters()[0].0)") != nil else { return }  // an older state: restore(from:) read the average
        var values: [String: [Float]] = [:]
        for (name, parameter) in denoiser.namedParameters() {
            guard let info = state.info("ema.\(name)"), info.shape == parameter.shape else {
                throw SafeTensorsError(.missingTensor, source: state.source, "no ema.\(name) of shape \(parameter.shape)")
            }
            values[name] = try state.floats("ema.\(name)")
        }
        ema.restore(values)
    }
}
