import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

extension SamplerKind: ExpressibleByArgument {}
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
    @Option(help: "Noise schedule scale (below 1 adds noise at every time: log-SNR shifted by 2·log(scale)).") var scheduleScale = 1.0
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
    @Option(help: "Start from this denoiser folder's weights and EMA (longer training with a new schedule; its network shape is used).")
    var initFrom: String?

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
                config.schedule = NoiseSchedule(scale: scheduleScale)
                config.emaDecay = emaDecay
                config.autoencoder = relativePath(from: directory, to: aeDirectory)
                if let initFrom {
                    config.network = try readJSON(LatentDiffusionConfig.self, fileURL(initFrom).appendingPathComponent("config.json"))
                        .network
                }
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
