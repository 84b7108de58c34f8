import Foundation
import NebulaNN
import NebulaTensor

/// Hyperparameters of a language-model training run (saved beside the model as `training.json`).
public struct LMTrainingOptions: Codable, Sendable, Equatable {
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

/// What a finished (or interrupted) run reports.
public struct LMTrainingSummary: Sendable {
    public var stepsDone: Int
    public var trainLoss: Float
    public var validationLoss: Float?
    public var seconds: Double
    public var tokensPerSecond: Double
    public var interrupted: Bool
    /// Training losses of the steps run in this call, in order (for tests and reports).
    public var losses: [Float]
}

/// A training run stopped on bad numbers.
public struct TrainingDiverged: Error, LocalizedError {
    public let step: Int
    public let loss: Float
    public var errorDescription: String? {
        "training diverged: the loss is \(loss) at step \(step); the last good checkpoint is kept (lower the learning rate, or --resume from it)"
    }
}

/// Trains a GPT on next-token prediction from a token stream, with the habits of a training tool: a
/// progress bar, a JSONL log, a loss plot, periodic checkpoints, exact `resume`, Ctrl-C saving a checkpoint,
/// and a clear stop on NaN/Inf.
///
/// The output folder holds `config.json`, `model.safetensors`, `training_state.safetensors`,
/// `training.json`, `log.jsonl` and `loss.svg`.
public final class LanguageModelTrainer {
    public let model: GPT
    public let options: LMTrainingOptions
    public let directory: URL
    private let train: [Int32]
    private let validation: [Int32]
    /// Called after each checkpoint is written (e.g. to add tokenizer files to the folder).
    public var onCheckpoint: ((URL) throws -> Void)?
    /// Show a progress bar on standard error.
    public var showProgress = true
    /// End this invocation after this many steps, with a checkpoint, as Ctrl-C would: the schedule still
    /// runs to `options.steps`, so `--resume` continues it (time-boxed training in several sittings).
    public var stopAfterSteps: Int?

    public init(model: GPT, train: [Int32], validation: [Int32], options: LMTrainingOptions, directory: URL) {
        let needed = model.config.contextLength + 1
        precondition(train.count > needed, "LanguageModelTrainer: \(train.count) training tokens, need more than \(needed)")
        self.model = model
        self.train = train
        self.validation = validation.count > needed ? validation : []
        self.options = options
        self.directory = directory
    }

    /// Runs until `options.steps` (continuing a saved run when `resume` is set) or Ctrl-C.
    @discardableResult
    public func run(resume: Bool = false) throws -> LMTrainingSummary {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let optimizer = AdamW(learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2, weightDecay: options.weightDecay)
        var state = TrainingState(step: 0, generator: SeededGenerator(seed: options.seed))
        if resume {
            try ModelFolder.loadWeights(model, from: directory)
            state = try TrainingState.load(from: directory.appendingPathComponent(ModelFolder.trainingState), into: optimizer)
        }
        let log = try MetricsLog(url: directory.appendingPathComponent(ModelFolder.log), truncate: !resume)
        let schedule = cosineSchedule(peak: options.learningRate, warmup: options.warmupSteps, total: options.steps, minimum: options.minLearningRate)
        let (batch, length) = (options.batchSize, model.config.contextLength)
        let tokensPerStep = batch * length * options.accumulationSteps
        let bar = showProgress ? ProgressBar(total: options.steps, label: "train lm", startStep: state.step) : nil
        let start = Date()
        var losses: [Float] = []
        var validationLoss: Float?
        var interrupted = false
        let stopStep = stopAfterSteps.map { state.step + $0 }
        Interrupt.install()
        defer { Interrupt.uninstall() }
        model.train()

        while state.step < options.steps {
            let stepStart = Date()
            optimizer.learningRate = schedule(state.step)
            var loss: Float = 0
            for _ in 0..<options.accumulationSteps {
                let (x, y) = sampleWindows(train, batch: batch, length: length, generator: &state.generator)
                let micro = model.loss(x, targets: y, batch: batch, length: length)
                loss += micro.item / Float(options.accumulationSteps)
                (options.accumulationSteps > 1 ? micro * (1 / Float(options.accumulationSteps)) : micro).backward()
            }
            guard loss.isFinite else {
                model.zeroGrad()
                throw TrainingDiverged(step: state.step + 1, loss: loss)
            }
            let norm = clipGradientNorm(model.parameters(), maxNorm: options.gradientClip)
            optimizer.step(model)
            state.step += 1
            losses.append(loss)
            let tokensPerSecond = Double(tokensPerStep) / Date().timeIntervalSince(stepStart)
            var record: [String: Double] = ["step": Double(state.step), "train_loss": Double(loss),
                                            "lr": Double(optimizer.learningRate), "grad_norm": Double(norm),
                                            "tokens_per_s": tokensPerSecond]
            if state.step % options.evalEvery == 0 || state.step == options.steps {
                validationLoss = evaluate()
                if let validationLoss { record["val_loss"] = Double(validationLoss) }
            }
            log.append(record)
            interrupted = Interrupt.requested || state.step == stopStep
            if state.step % options.checkpointEvery == 0 || state.step == options.steps || interrupted {
                try checkpoint(state, optimizer)
            }
            bar?.update(step: state.step, [
                "loss": String(format: "%.4f", loss),
                "val": validationLoss.map { String(format: "%.4f", $0) } ?? "–",
                "lr": String(format: "%.2e", optimizer.learningRate),
                "tok/s": String(format: "%.0f", tokensPerSecond),
            ])
            if interrupted { break }
        }
        bar?.finish()
        if interrupted && showProgress { printStatus("stopped: checkpoint saved at step \(state.step) in \(directory.path) (continue with --resume)") }
        let seconds = Date().timeIntervalSince(start)
        return LMTrainingSummary(stepsDone: state.step, trainLoss: losses.last ?? .nan, validationLoss: validationLoss,
                                 seconds: seconds, tokensPerSecond: Double(losses.count * tokensPerStep) / max(seconds, 1e-9),
                                 interrupted: interrupted, losses: losses)
    }

    /// Mean loss over `evalBatches` validation batches drawn with a fixed seed (comparable across steps and
    /// independent of the training stream); nil without validation data.
    public func evaluate() -> Float? {
        guard !validation.isEmpty else { return nil }
        var generator = SeededGenerator(seed: 0x5EED)
        let (batch, length) = (options.batchSize, model.config.contextLength)
        return withNoGrad {
            var total: Float = 0
            for _ in 0..<options.evalBatches {
                let (x, y) = sampleWindows(validation, batch: batch, length: length, generator: &generator)
                total += model.loss(x, targets: y, batch: batch, length: length).item
            }
            return total / Float(options.evalBatches)
        }
    }

    private func checkpoint(_ state: TrainingState, _ optimizer: AdamW) throws {
        try model.save(to: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(options).write(to: directory.appendingPathComponent("training.json"), options: .atomic)
        try state.save(optimizer: optimizer, to: directory.appendingPathComponent(ModelFolder.trainingState))
        try onCheckpoint?(directory)
        try writeLossPlot(log: directory.appendingPathComponent(ModelFolder.log), to: directory.appendingPathComponent(ModelFolder.plot))
    }
}

/// `batch` random windows of `length + 1` tokens: inputs and the targets shifted by one, each `[B·T]`.
public func sampleWindows(_ tokens: [Int32], batch: Int, length: Int, generator: inout SeededGenerator) -> (x: [Int32], y: [Int32]) {
    var x: [Int32] = [], y: [Int32] = []
    x.reserveCapacity(batch * length)
    y.reserveCapacity(batch * length)
    for _ in 0..<batch {
        let start = generator.nextInt(below: tokens.count - length)
        x += tokens[start..<(start + length)]
        y += tokens[(start + 1)...(start + length)]
    }
    return (x, y)
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
    try plot.svg().write(to: url, atomically: true, encoding: .utf8)
}
