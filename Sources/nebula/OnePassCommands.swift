import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor

/// `nebula train onepass`: a decoder that writes the loop's passages in one forward pass.
struct TrainOnePass: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onepass",
        abstract: "Train a one-pass decoder of the loop's latents (distilled from the autoregressive decoder).",
        discussion: """
            First the bundle's loop generates --pairs latents at each of --loop-steps in turn (at the bundle's noise for \
            that count) and its autoregressive decoder, fused with the LM, writes each one's passage; the pairs are kept \
            in --out/pairs/, 1,024 a file, so an interrupted run generates only what is missing. Then a copy of the \
            autoencoder's parallel decoder learns to write those passages from those latents, every token at once. \
            Copy --out to the bundle's onepass/ folder and `generate --decoder one-pass` uses it.
            """
    )

    @OptionGroup var bundle: BundleOptions
    @Option(help: "Output folder.") var out: String
    @Option(help: "Training pairs to generate (rounded up to a multiple of 1,024).") var pairs = 32_768
    @Option(parsing: .upToNextOption, help: "The loops whose latents the decoder learns to read, by step count.")
    var loopSteps: [Int] = [2, 4, 8]
    @Option(help: "Decoder layers (default: the autoencoder's parallel decoder's; its weights start the first ones).")
    var layers: Int?
    @Option(help: "Forward passes of a decode: 1 writes every token at once, more refine a draft (mask-predict).") var passes = 1
    @Option(help: "Passages per loop batch when generating pairs.") var pairBatch = 64
    @OptionGroup var training: TrainingArguments
    @Flag(help: "Continue the run saved in --out.") var resume = false

    static let chunk = 1024
    static let validationPerLoop = 256

    func validate() throws {
        guard pairs >= 1 else { throw ValidationError("--pairs must be positive, got \(pairs)") }
        guard !loopSteps.isEmpty, loopSteps.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--loop-steps must be positive step counts")
        }
        guard (layers ?? 1) >= 1 else { throw ValidationError("--layers must be positive, got \(layers ?? 0)") }
        guard (1...64).contains(passes) else { throw ValidationError("--passes must be in [1, 64], got \(passes)") }
        guard pairBatch >= 1 else { throw ValidationError("--pair-batch must be positive, got \(pairBatch)") }
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            let folders = try BundleFolders(resolving: bundle.model.map(fileURL) ?? BundleOptions.defaultBundle())
            let system = try LatentDiffusion.load(from: folders.diffusion)
            guard system.autoencoder.autoregressive != nil else {
                throw CommandError("\(folders.autoencoder.path): the autoencoder has no autoregressive decoder to distil")
            }
            let store = directory.appendingPathComponent("pairs")
            try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
            let chunks = (pairs + Self.chunk - 1) / Self.chunk
            let train = try DecodedLatents.concatenate(
                (0..<chunks).map { i in
                    try cachedPairs(
                        system, steps: loopSteps[i % loopSteps.count], count: Self.chunk, seed: training.seed &+ UInt64(i),
                        url: store.appendingPathComponent(String(format: "%04d.safetensors", i)))
                })
            let validation = try DecodedLatents.concatenate(
                loopSteps.map { steps in
                    try cachedPairs(
                        system, steps: steps, count: Self.validationPerLoop, seed: 0xBAD5EED &+ UInt64(steps),
                        url: store.appendingPathComponent("validation-\(steps)-steps.safetensors"))
                })
            let config: OnePassDecoderConfig
            let options: TrainingOptions
            if resume {
                config = try readJSON(OnePassDecoderConfig.self, directory.appendingPathComponent(ModelFolder.config))
                options = try readJSON(TrainingOptions.self, directory.appendingPathComponent("training.json"))
            } else {
                var made = OnePassDecoderConfig(
                    layers: layers ?? system.autoencoder.config.decoderLayers, passes: passes, loopSteps: loopSteps,
                    teacherLanguageModelPrior: try system.configuration(for: GenerationRequest()).languageModelPrior)
                made.autoencoder = relativePath(from: directory, to: folders.autoencoder)
                (config, options) = (made, training.options(defaultBatchSize: 32))
            }
            var rng = SeededGenerator(seed: options.seed)
            let decoder = OnePassDecoder(config, autoencoder: system.autoencoder, generator: &rng)
            printStatus(
                "\(decoder.parameterCount.formatted()) decoder parameters; \(train.count.formatted()) training pairs, \(validation.count) held out"
            )
            let task = OnePassDistillationTask(decoder: decoder, autoencoder: system.autoencoder, pairs: train, validation: validation)
            let summary = try training.train(task, options: options, in: directory, label: "train onepass", resume: resume)
            func figure(_ key: String) -> String { summary.evaluation[key].map { String(format: "%.4f", $0) } ?? "–" }
            print(
                String(
                    format: "step %d: train loss %.4f, validation loss %@, token accuracy %@, exact passages %@, %@", summary.stepsDone,
                    summary.trainLoss, figure("val_loss"), figure("val_token_accuracy"), figure("val_exact_passages"),
                    formatDuration(summary.seconds)))
        }
    }

    /// `count` pairs of the `steps`-step loop (the bundle's defaults for it) drawn with `seed`: read from `url` when it
    /// holds exactly those (its metadata names the denoiser, the loop and the seed), else generated and written there.
    func cachedPairs(_ system: LatentDiffusion, steps: Int, count: Int, seed: UInt64, url: URL) throws -> DecodedLatents {
        let config = try resolve(GenerationRequest(steps: steps, decoder: .autoregressive), for: system)
        let key = [
            "denoiser_weights": String(system.denoiser.weightsHash(), radix: 16),
            "decoder_weights": String(system.autoencoder.weightsHash(), radix: 16),
            "loop": config.loopDescription, "lm_prior": "\(config.languageModelPrior)", "seed": "\(seed)", "count": "\(count)"
        ]
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                let file = try SafeTensorsFile(contentsOf: url)
                if key.allSatisfy({ file.metadata[$0.key] == $0.value }) { return try DecodedLatents.read(from: file) }
                printStatus("\(url.path): pairs of another model or loop: generating again")
            } catch {
                printStatus("\(url.path): unreadable (\(error)): generating again")
            }
        }
        var generator = SeededGenerator(seed: seed)
        let bar = ProgressBar(total: count, label: "pairs \(url.lastPathComponent) (\(steps) steps)")
        var parts: [DecodedLatents] = []
        for start in stride(from: 0, to: count, by: pairBatch) {
            parts.append(DecodedLatents.generate(system, config, count: min(pairBatch, count - start), generator: &generator))
            bar.update(step: start + parts.last!.count)
        }
        bar.finish()
        let pairs = DecodedLatents.concatenate(parts)
        try pairs.write(to: url, metadata: key)
        return pairs
    }
}
