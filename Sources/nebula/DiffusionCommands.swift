import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

extension SamplerKind: ExpressibleByArgument {}
extension InfillSelection: ExpressibleByArgument {}
extension Objective: ExpressibleByArgument {}

/// `nebula train diffusion`: stage 3 on the latents of the autoencoder's passages.
struct TrainDiffusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Train a latent denoiser in an autoencoder's latent space.",
        discussion: """
            The latents of every passage of the language model's training documents are computed once (cached as \
            latents.safetensors in --out). Each passage is conditioned on the preceding passage's latent (dropped \
            10% of the time, and for a document's first passage), so one model generates both unconditionally and \
            as a continuation.
            """
    )

    @Option(help: "The autoencoder folder.") var autoencoder: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Denoiser width.") var width = 256
    @Option(help: "Denoiser layers.") var layers = 6
    @Option(help: "Attention heads.") var heads = 8
    @Option(help: "What the denoiser predicts: v, epsilon or x0.") var objective: Objective = .v
    @Option(
        help:
            "Noise schedule scale (below 1 adds noise at every time: log-SNR shifted by 2·log(scale)); default 1, or with --init-from that denoiser's schedule."
    ) var scheduleScale: Double?
    @Flag(inversion: .prefixedNo, help: "Condition on the preceding passage's latent.") var conditional = true
    @Flag(inversion: .prefixedNo, help: "Self-conditioning.") var selfConditioning = true
    @Option(help: "EMA decay of the sampling weights.") var emaDecay: Float = 0.999
    @Option(
        name: .customLong("passages"),
        help:
            "Training passages: every-sentence (whole sentences from each sentence on), fixed (exactly the maximum length from each sentence on, no padding) or packed (one after another)."
    ) var passageStarts: PassageBatcher.Starts = .everySentence
    @OptionGroup var training: TrainingArguments
    @Flag(help: "Continue the run saved in --out.") var resume = false
    @Option(
        help:
            "Start from this denoiser folder's weights and EMA (longer training with a new learning-rate schedule; its network shape, objective and noise schedule are used)."
    )
    var initFrom: String?
    @Flag(
        help:
            "Give the denoiser a mask channel: a random span of a passage's latent vectors is known in training (infilling). With --init-from, the channel is added to that denoiser."
    ) var knownLatents = false
    @Option(help: "With --known-latents: the share of training passages with a span known (the rest: none, unconditional).")
    var knownLatentsRate: Float = 0.5

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            let aeDirectory = fileURL(autoencoder)
            let ae = try LatentAutoencoder.load(from: aeDirectory)
            let lmDirectory = ModelFolder.resolve(ae.config.languageModel, from: aeDirectory)
            let tokenizer = try loadTokenizer(directory: lmDirectory)
            var config: LatentDiffusionConfig, options: TrainingOptions
            if resume {
                config = try readJSON(LatentDiffusionConfig.self, directory.appendingPathComponent("config.json"))
                options = try readJSON(TrainingOptions.self, directory.appendingPathComponent("training.json"))
            } else {
                config = LatentDiffusionConfig()
                config.network.latents = ae.config.latents
                config.network.latentWidth = ae.config.latentWidth
                config.network.width = width
                config.network.layers = layers
                config.network.heads = heads
                config.network.selfConditioning = selfConditioning
                config.network.contextWidth = conditional ? ae.config.latentWidth : 0
                config.objective = objective
                if let scheduleScale, scheduleScale <= 0 {
                    throw ValidationError("--schedule-scale must be positive, got \(scheduleScale)")
                }
                config.schedule = NoiseSchedule(scale: scheduleScale ?? 1)
                config.emaDecay = emaDecay
                config.autoencoder = relativePath(from: directory, to: aeDirectory)
                if let initFrom {
                    let source = try readJSON(LatentDiffusionConfig.self, fileURL(initFrom).appendingPathComponent("config.json"))
                    config.network = source.network
                    config.objective = source.objective
                    if scheduleScale == nil { config.schedule = source.schedule }
                }
                config.network.knownLatents = config.network.knownLatents || knownLatents
                guard knownLatentsRate >= 0 && knownLatentsRate <= 1 else {
                    throw ValidationError("--known-latents-rate must be in [0, 1], got \(knownLatentsRate)")
                }
                config.knownLatentsRate = knownLatentsRate
                guard width % heads == 0 else { throw ValidationError("--width \(width) is not divisible by --heads \(heads)") }
                options = training.options(defaultBatchSize: 64)
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let cut = try passages(
                spec: recordedDataSpec(dataFolders: [aeDirectory, lmDirectory]), tokenizer: tokenizer, maxLength: ae.config.maxLength,
                trainStarts: passageStarts)
            let (train, validation) = (cut.train.passages, cut.validation.passages)
            let latents = try cachedLatents(ae, train.map(\.tokens), url: directory.appendingPathComponent("latents.safetensors"))
            let heldOut = ae.encode(Array(validation.prefix(512)).map(\.tokens))
            var previous = [Int?](repeating: nil, count: train.count)
            for pair in cut.train.pairs where previous[pair.next] == nil { previous[pair.next] = pair.first }
            var rng = SeededGenerator(seed: options.seed)
            let denoiser = Denoiser(config.network, generator: &rng)
            printStatus(
                "\(denoiser.parameterCount.formatted()) denoiser parameters; \(train.count.formatted()) training latents (\(previous.compactMap { $0 }.count.formatted()) with a preceding passage)"
            )
            let task = DiffusionTask(config: config, denoiser: denoiser, latents: latents, previous: previous, validation: heldOut)
            if let initFrom, !resume { try task.restore(from: fileURL(initFrom)) }
            let summary = try training.train(task, options: options, in: directory, label: "train diffusion", resume: resume)
            let validationLoss = summary.evaluation["val_loss"].map { String(format: "%.4f", $0) } ?? "–"
            let linear =
                summary.evaluation["val_loss_gaussian"].map { String(format: " (the linear denoiser of the latents' Gaussian: %.4f)", $0) }
                ?? ""
            print(
                String(
                    format: "step %d: train loss %.4f, validation loss %@%@, %.1f latents/s, %@", summary.stepsDone, summary.trainLoss,
                    validationLoss, linear, summary.throughput, formatDuration(summary.seconds)))
        }
    }
}

/// The latents of `passages` (token ids), read from `url` when it holds the latents of these passages by these weights
/// (its metadata keys them by the autoencoder's weights hash and the passages' tokens), else computed and
/// written there.
func cachedLatents(_ ae: LatentAutoencoder, _ passages: [[Int32]], url: URL) throws -> Tensor {
    let lengths = passages.map { Int32($0.count) }
    let key = [
        "autoencoder_weights": String(ae.weightsHash(), radix: 16),
        "passages": String(fnv1aHash([lengths] + passages), radix: 16)
    ]
    if FileManager.default.fileExists(atPath: url.path) {
        do {
            let file = try SafeTensorsFile(contentsOf: url)
            let z = try file.tensor("latents")
            if key.allSatisfy({ file.metadata[$0.key] == $0.value }) && z.shape.first == passages.count { return z }
            printStatus("\(url.path): latents of other weights or passages: encoding again")
        } catch {
            printStatus("\(url.path): unreadable (\(error)): encoding again")
        }
    }
    let bar = ProgressBar(total: passages.count, label: "encode passages")
    var parts: [Tensor] = []
    for start in stride(from: 0, to: passages.count, by: 256) {
        let chunk = Array(passages[start..<min(start + 256, passages.count)])
        parts.append(ae.encode(chunk))
        bar.update(step: start + chunk.count)
    }
    bar.finish()
    let z = Tensor.concatenate(parts, axis: 0)
    if isLeadProcess {
        try writeSafeTensors([SafeTensorsEntry(name: "latents", shape: z.shape, floats: z.data)], metadata: key, to: url)
    }
    return z
}

/// `nebula train distill`: progressive distillation of a denoiser's sampler, halving its steps each round.
struct TrainDistill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a denoiser into one that samples in a few steps (progressive distillation).",
        discussion: """
            Each round trains a student, started from its teacher, to take in one sampler step what the teacher takes \
            in two (with ddpm, the teacher's mean over its first step's noise): --teacher-steps → half → … → --steps-to. Round S (the student's steps) is a training run of its \
            own in --out/S-steps (config.json, model.safetensors, log.jsonl, the training state), and the next round's \
            teacher; running the command again resumes the unfinished round and skips finished ones.
            """
    )

    @Option(name: .customLong("from"), help: "The denoiser folder to distil (its sampling weights are the first teacher).")
    var teacher: String
    @Option(help: "The steps of the first teacher (a power of two times --steps-to).") var teacherSteps = 16
    @Option(help: "The sampler distilled: ddpm (ancestral, the bundle's) or ddim (deterministic).") var sampler: SamplerKind = .ddpm
    @Option(help: "The ddpm sampler's noise temperature (default: the teacher's sampling default).") var noiseScale: Float?
    @Option(help: "The steps of the last student.") var stepsTo = 2
    @Option(help: "Output folder: one subfolder a round.") var out: String
    @OptionGroup var training: TrainingArguments

    func validate() throws {
        guard stepsTo >= 1, teacherSteps > stepsTo else { throw ValidationError("--steps-to must be positive and below --teacher-steps") }
        var steps = teacherSteps
        while steps > stepsTo && steps % 2 == 0 { steps /= 2 }
        guard steps == stepsTo else {
            throw ValidationError("--teacher-steps \(teacherSteps) does not halve down to --steps-to \(stepsTo)")
        }
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            var teacherDirectory = fileURL(teacher)
            let first = try LatentDiffusion.load(from: teacherDirectory)
            let ae = first.autoencoder
            let aeDirectory = ModelFolder.resolve(first.config.autoencoder, from: teacherDirectory)
            let lmDirectory = ModelFolder.resolve(ae.config.languageModel, from: aeDirectory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let cut = try passages(
                spec: recordedDataSpec(dataFolders: [aeDirectory, lmDirectory]), tokenizer: try loadTokenizer(directory: lmDirectory),
                maxLength: ae.config.maxLength, trainStarts: .everySentence)
            let latents = try cachedLatents(
                ae, cut.train.passages.map(\.tokens), url: directory.appendingPathComponent("latents.safetensors"))
            let heldOut = ae.encode(Array(cut.validation.passages.prefix(512)).map(\.tokens))
            let renormalize = first.config.sampling?.renormalizeEstimates ?? true
            let temperature = noiseScale ?? first.config.sampling?.noiseScale ?? 1
            var steps = teacherSteps / 2
            while steps >= stepsTo {
                let round = directory.appendingPathComponent("\(steps)-steps")
                let teacherSystem = try LatentDiffusion.load(from: teacherDirectory, autoencoder: ae)  // the round's teacher
                var config = teacherSystem.config
                config.distillation = DistillationRecord(
                    steps: steps, teacherSteps: steps * 2, sampler: sampler, noiseScale: temperature, renormalizeEstimates: renormalize)
                config.autoencoder = relativePath(from: round, to: aeDirectory)
                var rng = SeededGenerator.forLoading
                let student = Denoiser(config.network, generator: &rng)
                try ModelFolder.loadWeights(student, from: teacherDirectory)
                let task = DistillationTask(
                    config: config, teacher: teacherSystem.denoiser, student: student, latents: latents, validation: heldOut)
                let resume = FileManager.default.fileExists(atPath: round.appendingPathComponent(ModelFolder.trainingState).path)
                let options =
                    resume
                    ? try readJSON(TrainingOptions.self, round.appendingPathComponent("training.json"))
                    : training.options(defaultBatchSize: 32)
                let summary = try training.train(
                    task, options: options, in: round, label: "distill \(steps * 2) → \(steps)", resume: resume)
                if summary.interrupted { return }
                if summary.losses.isEmpty {
                    print("\(steps * 2) → \(steps) steps: trained already (\(round.path))")
                } else {
                    print(
                        String(
                            format: "%d → %d steps: train loss %.4f, validation loss %@, %@ (%@)", steps * 2, steps, summary.trainLoss,
                            summary.evaluation["val_loss"].map { String(format: "%.4f", $0) } ?? "–", formatDuration(summary.seconds),
                            round.path))
                }
                teacherDirectory = round
                steps /= 2
            }
        }
    }
}
