import ArgumentParser
import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor
import Synchronization

/// The training options every trainer shares.
struct TrainingArguments: ParsableArguments, ChoosesExecution {
    @Option(help: "Items per micro-batch (default: 12 for LMs, 32 for autoencoders and denoisers).") var batchSize: Int?
    @Option(help: "Optimizer steps.") var steps = 2000
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Float = 1e-3
    @Option(name: .customLong("min-lr"), help: "Final learning rate of the cosine decay.") var minLearningRate: Float = 1e-4
    @Option(help: "Linear warm-up steps.") var warmup = 100
    @Option(help: "AdamW weight decay (matrices only).") var weightDecay: Float = 0.1
    @Option(help: "AdamW β2.") var beta2: Float = 0.99
    @Option(help: "Gradient clipping: maximum global norm.") var clip: Float = 1
    @Option(help: "Micro-batches accumulated per step.") var accumulate = 1
    @Option(help: "Seed of the initialisation and the batch sampler.") var seed: UInt64 = 1337
    @Option(help: "Evaluate every N steps.") var evalEvery = 250
    @Option(help: "Validation batches per evaluation.") var evalBatches = 20
    @Option(help: "Checkpoint every N steps.") var checkpointEvery = 500
    @Option(help: "Stop this invocation after N steps with a checkpoint (resume later).") var stopAfter: Int?
    @OptionGroup var precision: PrecisionOptions
    @Option(help: "Worker threads (default and most: NEBULA_THREADS, else every core).") var threads: Int?

    func validate() throws {
        for (name, value) in [
            ("--batch-size", batchSize ?? 1), ("--steps", steps), ("--accumulate", accumulate), ("--threads", threads ?? 1),
            ("--eval-every", evalEvery), ("--checkpoint-every", checkpointEvery)
        ] where value <= 0 {
            throw ValidationError("\(name) must be positive, got \(value)")
        }
    }

    func configure(_ context: inout ExecutionContext) {
        precision.configure(&context)
        if let threads { context.threads = min(threads, Parallel.defaultThreads) }
    }

    /// The trainer's options.
    func options(defaultBatchSize: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.batchSize = batchSize ?? defaultBatchSize
        o.steps = steps
        o.learningRate = learningRate
        o.minLearningRate = minLearningRate
        o.warmupSteps = warmup
        o.weightDecay = weightDecay
        o.beta2 = beta2
        o.gradientClip = clip
        o.accumulationSteps = accumulate
        o.seed = seed
        o.evalEvery = evalEvery
        o.evalBatches = evalBatches
        o.checkpointEvery = checkpointEvery
        return o
    }
}

extension TrainingArguments {
    /// Trains `task` in `directory` as every `train` command does: on this run's ranks (`processGroup`), with the
    /// progress bar labelled `label`, ending early with a checkpoint at `--stop-after` or on Ctrl-C (a second
    /// Ctrl-C ends the process at once).
    func train(_ task: TrainingTask, options: TrainingOptions, in directory: URL, label: String, resume: Bool) throws -> TrainingSummary {
        let trainer = Trainer(task: task, options: options, directory: directory)
        trainer.group = processGroup
        trainer.label = label
        trainer.stopAfterSteps = stopAfter
        trainer.stopRequested = { Interrupt.requested }
        Interrupt.install()
        defer { Interrupt.uninstall() }
        let summary = try trainer.run(resume: resume)
        if summary.interrupted && isLeadProcess {
            printStatus("stopped: checkpoint saved at step \(summary.stepsDone) in \(directory.path) (continue with --resume)")
        }
        return summary
    }
}

/// Catches Ctrl-C (SIGINT) and `kill` (SIGTERM, which is also what `mpirun` sends every rank when it gets Ctrl-C)
/// so a training loop can save a checkpoint and exit cleanly: the first signal sets `requested`; a second one
/// ends the process at once.
enum Interrupt {
    /// Signals received since `install()`: an atomic, so the handler (which may run on any thread) and the
    /// training loop share it without a race; lock-free, so it is safe in a signal handler.
    private static let count = Atomic<Int32>(0)

    /// Whether Ctrl-C (or SIGTERM) has arrived since `install()`.
    static var requested: Bool { count.load(ordering: .relaxed) > 0 }

    /// Installs the handler (idempotent).
    static func install() {
        count.store(0, ordering: .relaxed)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                if Interrupt.count.add(1, ordering: .relaxed).newValue > 1 { _exit(128 + received) }
            }
        }
    }

    /// Restores the default behaviour of both signals.
    static func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
