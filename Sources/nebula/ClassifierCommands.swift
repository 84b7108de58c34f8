import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// `nebula train classifier`: a classifier of noised latents, whose gradient steers the loop towards a label.
struct TrainClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Train a classifier of an autoencoder's noised latents, for classifier guidance (generate --classifier).",
        discussion: """
            --data is a tab-separated file, one passage<TAB>label per line. Each passage is encoded once (cut to the \
            autoencoder's passage length; latents cached as latents.safetensors in --out), and the classifier learns its \
            label from the latent noised at a uniformly drawn time, so it can answer at every step of the loop.
            """
    )

    @Option(help: "The autoencoder folder whose latents are classified.") var autoencoder: String
    @Option(help: "Labelled passages: passage<TAB>label per line.") var data: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Width of the hidden layers.") var hidden = 256
    @Option(
        help:
            "Noise schedule scale of the training latents; use the denoiser's (the bundle's is 0.125) so training covers the noise levels the loop visits."
    ) var scheduleScale = 1.0
    @Option(help: "Share of the passages held out for validation (seeded).") var validationFraction = 0.05
    @OptionGroup var training: TrainingArguments
    @Flag(help: "Continue the run saved in --out.") var resume = false

    func validate() throws {
        guard hidden >= 1 else { throw ValidationError("--hidden must be positive, got \(hidden)") }
        guard scheduleScale > 0 else { throw ValidationError("--schedule-scale must be positive, got \(scheduleScale)") }
        guard validationFraction >= 0 && validationFraction < 1 else {
            throw ValidationError("--validation-fraction must be in [0, 1), got \(validationFraction)")
        }
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            let aeDirectory = fileURL(autoencoder)
            let ae = try LatentAutoencoder.load(from: aeDirectory)
            let tokenizer = try loadTokenizer(directory: ModelFolder.resolve(ae.config.languageModel, from: aeDirectory))
            let examples = try LabelledTexts.read(fileURL(data))
            let labels = Set(examples.map(\.label)).sorted()
            guard labels.count >= 2 else { throw CommandError("\(data): a classifier needs at least two labels, found \(labels)") }

            var config: LatentClassifierConfig, options: TrainingOptions
            if resume {
                config = try readJSON(LatentClassifierConfig.self, directory.appendingPathComponent("config.json"))
                options = try readJSON(TrainingOptions.self, directory.appendingPathComponent("training.json"))
                guard config.labels == labels else {
                    throw CommandError("\(data): labels \(labels) differ from the run's \(config.labels): start a new --out")
                }
            } else {
                config = LatentClassifierConfig()
                (config.labels, config.hidden, config.schedule) = (labels, hidden, NoiseSchedule(scale: scheduleScale))
                (config.latents, config.latentWidth) = (ae.config.latents, ae.config.latentWidth)
                config.autoencoderWeights = String(ae.weightsHash(), radix: 16)
                options = training.options(defaultBatchSize: 64)
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

            let limit = ae.config.maxLength
            let tokens = try examples.map { try tokenizer.encode($0.text) }
            let cut = tokens.filter { $0.count > limit }.count
            if cut > 0 {
                printStatus("\(cut.formatted()) of \(tokens.count.formatted()) passages are longer than \(limit) tokens: cut to \(limit)")
            }
            let latents = try cachedLatents(
                ae, tokens.map { $0.prefix(limit).map(Int32.init) }, url: directory.appendingPathComponent("latents.safetensors"))
            let indices = examples.map { labels.firstIndex(of: $0.label)! }

            // A seeded split: the same passages are held out on resume.
            var random = SeededRandom(seed: options.seed)
            var order = Array(0..<examples.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.next(below: i + 1)) }
            let heldOut = Int((Double(examples.count) * validationFraction).rounded())
            let (validationRows, trainRows) = (Array(order.prefix(heldOut)), Array(order.dropFirst(heldOut)))
            let counts = labels.map { label in examples.filter { $0.label == label }.count }
            printStatus(
                "\(trainRows.count.formatted()) training and \(validationRows.count.formatted()) held-out passages; "
                    + zip(labels, counts).map { "\($0): \($1.formatted())" }.joined(separator: ", "))

            var rng = SeededGenerator(seed: options.seed)
            let classifier = LatentClassifier(config, generator: &rng)
            let task = ClassifierTask(
                classifier: classifier, latents: latents.rows(trainRows), labels: trainRows.map { indices[$0] },
                validation: validationRows.isEmpty ? nil : (latents.rows(validationRows), validationRows.map { indices[$0] }))
            let summary = try training.train(task, options: options, in: directory, label: "train classifier", resume: resume)
            let accuracies = ClassifierTask.evaluationTimes.compactMap { time in
                summary.evaluation["val_accuracy_t\(Int(time * 100))"].map { String(format: "t %.2f: %.3f", time, $0) }
            }
            print(
                String(format: "step %d: train loss %.4f", summary.stepsDone, summary.trainLoss)
                    + (summary.evaluation["val_loss"].map { String(format: ", validation loss %.4f", $0) } ?? "")
                    + (accuracies.isEmpty ? "" : ", held-out accuracy " + accuracies.joined(separator: ", ")) + ", "
                    + formatDuration(summary.seconds))
        }
    }
}
extension ClassifierGuidance.Target: ExpressibleByArgument {}
