import Foundation
import NebulaNN
import NebulaTensor

/// Hyperparameters of a training run (saved beside the model as `training.json`).
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var batchSize = 12
    public var steps = 2000
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-4
    public var warmupSteps = 100
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.99
    public var gradientClip: Float = 1
    /// Micro-batches whose gradients are summed before each optimizer step.
    public var accumulationSteps = 1
    public var seed: UInt64 = 1337
    public var evalEvery = 250
    public var evalBatches = 20
    public var checkpointEvery = 500

    public init() {}

    enum CodingKeys: String, CodingKey {
        case batchSize = "batch_size", steps, learningRate = "learning_rate", minLearningRate = "min_learning_rate"
        case warmupSteps = "warmup_steps", weightDecay = "weight_decay", beta1, beta2, gradientClip = "gradient_clip"
        case accumulationSteps = "accumulation_steps", seed, evalEvery = "eval_every", evalBatches = "eval_batches"
        case checkpointEvery = "checkpoint_every"
    }
}

/// What a stage's training needs to provide: its trainable module, the loss of one micro-batch, an
/// evaluation, and how its folder is written and read back.
public protocol TrainingTask: AnyObject {
    /// The module whose trainable parameters the optimizer updates.
    var trainable: Module { get }
    /// Items (tokens, passages) in a micro-batch of `batchSize`, for the throughput figure.
    func items(inBatchOf batchSize: Int) -> Int
    /// The loss of one micro-batch drawn with `generator` (its state is checkpointed, so resume is exact).
    func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor
    /// Held-out figures over `batches` batches, e.g. `["val_loss": 2.1]`; empty without held-out data.
    func evaluate(batches: Int, batchSize: Int) -> [String: Double]
    /// Called after every optimizer step (e.g. to update an EMA of the weights).
    func afterStep(_ step: Int)
    /// Writes the model (config and weights) into `directory`.
    func save(to directory: URL) throws
    /// Reads the weights (and any averaged weights) back from `directory`: how checkpoints written before the
    /// training state held the weights are resumed.
    func restore(from directory: URL) throws
    /// Tensors beyond the trainable weights that resuming needs (e.g. an average of the weights), stored in
    /// the training state; their names must not start with `weights.` or `adam.`.
    func checkpointExtras() -> [SafeTensorsEntry]
    /// Reads back what `checkpointExtras` stored.
    func restoreExtras(from state: SafeTensorsFile) throws
}

extension TrainingTask {
    public func afterStep(_ step: Int) {}
    public func checkpointExtras() -> [SafeTensorsEntry] { [] }
    public func restoreExtras(from state: SafeTensorsFile) throws {}
}

/// What a finished (or stopped) run reports.
public struct TrainingSummary: Sendable {
    public var stepsDone: Int
    public var trainLoss: Float
    public var evaluation: [String: Double]
    public var seconds: Double
    /// Items (tokens, passages) per second over this invocation.
    public var throughput: Double
    public var interrupted: Bool
    /// Training losses of the steps run in this call, in order.
    public var losses: [Float]
}

/// A run that cannot start as configured.
public struct TrainingSetupError: Error, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var errorDescription: String? { message }
}

/// A training run stopped on bad numbers.
public struct TrainingDiverged: Error, LocalizedError {
    public let step: Int
    public let loss: Float
    public var errorDescription: String? {
        "training diverged: the loss is \(loss) at step \(step); the last good checkpoint is kept (lower the learning rate, or --resume from it)"
    }
}

/// The training loop every stage shares, with the habits of a training tool: AdamW with warmup + cosine
/// decay, gradient accumulation and clipping, a progress bar, a JSONL log of every figure, a loss plot,
/// periodic checkpoints, exact `resume`, a stop request saving a checkpoint, and a clear stop on NaN/Inf.
///
/// The folder gets the task's files plus `training.json`, `training_state.safetensors`, `log.jsonl`
/// and `loss.svg`.
///
/// ```swift
/// let trainer = Trainer(task: LanguageModelTask(model: gpt, train: x, validation: v), options: options, directory: out)
/// try trainer.run()
/// ```
public final class Trainer {
    public let task: TrainingTask
    public let options: TrainingOptions
    public let directory: URL
    /// The label shown before the progress bar.
    public var label = "train"
    /// Show a progress bar on standard error.
    public var showProgress = true
    /// End this invocation after this many steps, with a checkpoint, as a stop request would: the schedule
    /// still runs to `options.steps`, so a resumed run continues it (time-boxed training in several sittings).
    public var stopAfterSteps: Int?
    /// Asked after every step: true ends the run there, with a checkpoint (the command line answers it from
    /// Ctrl-C). On several ranks, any rank's request stops every rank at the same step.
    public var stopRequested: () -> Bool = { false }
    /// The processes of a data-parallel run, or nil for one process. Each rank computes `batchSize / size`
    /// items of every micro-batch, the gradients are summed over the ranks in one allreduce a step, and rank 0
    /// alone writes the log, plots and checkpoints. A run on N ranks computes what one process computes with
    /// `accumulationSteps × N` micro-batches of `batchSize / N` (the same streams; sums in another order).
    public var group: ProcessGroup?

    public init(task: TrainingTask, options: TrainingOptions, directory: URL) {
        self.task = task
        self.options = options
        self.directory = directory
    }

    /// Runs until `options.steps` (continuing a saved run when `resume` is set), `stopAfterSteps`, or a stop request;
    /// the summary says whether it stopped early (`interrupted`), with a checkpoint to resume from.
    @discardableResult
    public func run(resume: Bool = false) throws -> TrainingSummary {
        let (rank, ranks) = (group?.rank ?? 0, group?.size ?? 1)
        guard options.batchSize % ranks == 0 else {
            throw TrainingSetupError("the batch size \(options.batchSize) does not split over \(ranks) processes (it must be a multiple)")
        }
        let writes = rank == 0
        if writes {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            DurableFile.removeLeftovers(in: directory)  // from a process killed while checkpointing
        }
        let optimizer = AdamW(
            learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2, weightDecay: options.weightDecay)
        var state = TrainingState(step: 0, generator: SeededGenerator(seed: options.seed))
        let parameters = task.trainable.trainableParameters()
        if resume {
            // The training state is the checkpoint: written last, it holds the weights, the optimizer and the
            // sampler of one step, so a run killed while writing the model files resumes from a whole step.
            let url = directory.appendingPathComponent(ModelFolder.trainingState)
            let file = try SafeTensorsFile(contentsOf: url)
            state = try TrainingState.load(from: file, into: optimizer)
            if try !TrainingState.restoreWeights(parameters, from: file) { try task.restore(from: directory) }
            try task.restoreExtras(from: file)
        }
        let log =
            writes
            ? try MetricsLog(url: directory.appendingPathComponent(ModelFolder.log), keepingStepsThrough: resume ? state.step : nil) : nil
        let schedule = cosineSchedule(
            peak: options.learningRate, warmup: options.warmupSteps, total: options.steps, minimum: options.minLearningRate)
        let itemsPerStep = task.items(inBatchOf: options.batchSize) * options.accumulationSteps
        let bar = showProgress && writes ? ProgressBar(total: options.steps, label: label, startStep: state.step) : nil
        let start = Date()
        var losses: [Float] = []
        var evaluation: [String: Double] = [:]
        var interrupted = false
        let stopStep = stopAfterSteps.map { state.step + $0 }
        task.trainable.train()

        while state.step < options.steps {
            let stepStart = Date()
            optimizer.learningRate = schedule(state.step)
            var loss: Float = 0
            // One micro-batch draws from the run's generator, as always; several (accumulation, ranks) each draw
            // from a stream of their own, so whichever rank computes micro-batch i, it is the same batch.
            let microBatches = options.accumulationSteps * ranks
            for accumulated in 0..<options.accumulationSteps {
                var stream = Self.microBatchGenerator(seed: options.seed, step: state.step, index: accumulated * ranks + rank)
                let micro =
                    microBatches == 1
                    ? task.loss(batchSize: options.batchSize, generator: &state.generator)
                    : task.loss(batchSize: options.batchSize / ranks, generator: &stream)
                loss += micro.item / Float(microBatches)
                (microBatches > 1 ? micro * (1 / Float(microBatches)) : micro).backward()
            }
            var stopRequested = stopRequested()
            var allreduceSeconds: Double?
            if let group {
                let allreduceStart = Date()
                let summed = group.allreduceGradients(parameters.map(\.1), extra: [loss, stopRequested ? 1 : 0])
                (loss, stopRequested) = (summed[0], summed[1] > 0)  // any rank's Ctrl-C stops every rank at this step
                allreduceSeconds = Date().timeIntervalSince(allreduceStart)
            }
            guard loss.isFinite else {
                task.trainable.zeroGrad()
                throw TrainingDiverged(step: state.step + 1, loss: loss)
            }
            let norm = clipGradientNorm(parameters.map(\.1), maxNorm: options.gradientClip)
            optimizer.step(parameters)
            state.step += 1
            task.afterStep(state.step)
            losses.append(loss)
            let throughput = Double(itemsPerStep) / Date().timeIntervalSince(stepStart)
            var record: [String: Double] = [
                "step": Double(state.step), "train_loss": Double(loss),
                "lr": Double(optimizer.learningRate), "grad_norm": Double(norm),
                "items_per_s": throughput
            ]
            if let allreduceSeconds { record["allreduce_ms"] = 1000 * allreduceSeconds }
            if writes && (state.step % options.evalEvery == 0 || state.step == options.steps) {
                task.trainable.eval()
                evaluation = withNoGrad { task.evaluate(batches: options.evalBatches, batchSize: options.batchSize) }
                task.trainable.train()
                record.merge(evaluation) { $1 }
            }
            try log?.append(record)
            interrupted = stopRequested || state.step == stopStep
            if writes && (state.step % options.checkpointEvery == 0 || state.step == options.steps || interrupted) {
                try checkpoint(state, optimizer, parameters)
            }
            bar?.update(
                step: state.step,
                [
                    "loss": String(format: "%.4f", loss),
                    "val": evaluation["val_loss"].map { String(format: "%.4f", $0) } ?? "–",
                    "lr": String(format: "%.2e", optimizer.learningRate),
                    "items/s": String(format: "%.0f", throughput)
                ])
            if interrupted { break }
        }
        bar?.finish()
        if let group {
            let hash = try Self.checkSameWeights(parameters.map(\.1), group)
            if showProgress && writes { printStatus("all \(group.size) ranks hold the same weights (FNV-1a \(String(hash, radix: 16)))") }
        }
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(
            stepsDone: state.step, trainLoss: losses.last ?? .nan, evaluation: evaluation, seconds: seconds,
            throughput: Double(losses.count * itemsPerStep) / max(seconds, 1e-9),
            interrupted: interrupted, losses: losses)
    }

    /// Checks that every rank holds the same weights, by hash: each rank's 64-bit FNV-1a hash of its weights'
    /// bytes, as 8 one-byte chunks c, goes into an allreduce with c²; all ranks agree on chunk k exactly when
    /// N · Σc² = (Σc)². Returns the hash (the same on every rank).
    @discardableResult
    static func checkSameWeights(_ parameters: [Tensor], _ group: ProcessGroup) throws -> UInt64 {
        let hash = weightsHash(parameters)
        let chunks = (0..<8).map { Float((hash >> (8 * UInt64($0))) & 0xFF) }
        var buffer = chunks + chunks.map { $0 * $0 }
        buffer.withUnsafeMutableBufferPointer { group.allreduceSum($0) }
        for k in 0..<8 where Double(group.size) * Double(buffer[8 + k]) != Double(buffer[k]) * Double(buffer[k]) {
            throw TrainingSetupError(
                "the \(group.size) ranks ended with different weights (hash byte \(k) differs); the run was not data-parallel")
        }
        return hash
    }

    /// The generator of micro-batch `index` of `step` when a step has several: its own stream, a function of
    /// the run's seed, the step and the index alone.
    static func microBatchGenerator(seed: UInt64, step: Int, index: Int) -> SeededGenerator {
        SeededGenerator(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index + 1) &* 0xBF58_476D_1CE4_E5B9))
    }

    /// Writes the model files, then the training state (weights, optimizer, sampler): each file durably, the
    /// state last, so whatever instant the process dies at, the state on disk is one whole step.
    private func checkpoint(_ state: TrainingState, _ optimizer: AdamW, _ parameters: [(String, Tensor)]) throws {
        try task.save(to: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(encoder.encode(options), to: directory.appendingPathComponent("training.json"))
        try state.save(
            optimizer: optimizer, weights: parameters, extras: task.checkpointExtras(),
            to: directory.appendingPathComponent(ModelFolder.trainingState))
        try writeLossPlot(log: directory.appendingPathComponent(ModelFolder.log), to: directory.appendingPathComponent(ModelFolder.plot))
    }
}

/// Plots `train_loss` and `val_loss` of a JSONL log as an SVG.
public func writeLossPlot(log: URL, to url: URL, title: String = "Training loss") throws {
    let records = try MetricsLog.read(log)
    var plot = LinePlot(title: title, xLabel: "step", yLabel: "loss")
    let train = records.compactMap { r in r["train_loss"].map { (r["step"] ?? 0, $0) } }
    // Smooth the noisy per-step training loss with a running mean over 1% of the run.
    let window = max(1, train.count / 100)
    var smoothed: [(Double, Double)] = []
    var sum = 0.0
    for (i, point) in train.enumerated() {
        sum += point.1
        if i >= window { sum -= train[i - window].1 }
        if (i + 1) % window == 0 || i == train.count - 1 { smoothed.append((point.0, sum / Double(min(i + 1, window)))) }
    }
    plot.add("train", points: smoothed)
    plot.add("validation", points: records.compactMap { r in r["val_loss"].map { (r["step"] ?? 0, $0) } })
    try DurableFile.write(Data(plot.svg().utf8), to: url)
}
