import ArgumentParser
import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText
import NebulaEval

/// `nebula train autoencoder`: stage 2 on the language model's own corpus and split.
struct TrainAutoencoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoencoder",
        abstract: "Train a latent autoencoder: the frozen language model reads, a trained decoder writes.",
        discussion: """
            Passages of the LM's training documents (cut at sentence boundaries, at most --max-length tokens) are \
            read by the frozen LM; an encoder compresses its states to K × d latents (latent i holds the i-th \
            patch of L/K tokens) and a trained decoder reconstructs the passage: all tokens at once (--decoder \
            parallel) or token by token from a fine-tuned copy of the LM (--decoder autoregressive). Writes an \
            autoencoder folder (config.json naming the LM folder, model.safetensors, logs and plot).
            """
    )

    @Option(help: "The language-model folder (stays frozen): a Nebula LM or a Hugging Face GPT-2 folder.") var lm: String
    @Option(
        help:
            "Corpus to cut passages from, split into training and validation documents (5%, seed 1337); recorded in --out/data.json. Default: the LM's own corpus and split (its data.json; a Hugging Face folder has none)."
    ) var data: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "K: latent vectors per passage (must divide --max-length).") var latents = 16
    @Option(help: "d: width of each latent vector.") var latentWidth = 64
    @Option(help: "Width of the encoder and the parallel decoder (default: the LM's).") var width: Int?
    @Option(help: "Attention heads of those networks (default: the LM's).") var heads: Int?
    @Option(help: "Transformer layers of the encoder.") var encoderLayers = 2
    @Option(help: "Transformer layers of the parallel decoder.") var decoderLayers = 4
    @Option(help: "Longest passage in tokens.") var maxLength = 64
    @Option(help: "The LM states the encoder reads: -1 for the final ones, i for those after block i.") var lmLayer = -1
    @Option(help: "parallel (every token in one pass) or autoregressive (a fine-tuned copy of the LM reads the parallel decoder's states).")
    var decoder: AutoencoderConfig.Decoder = .parallel
    @Option(help: "Most std of the Gaussian noise added to latents in training (each passage draws its std from U(0, this)).")
    var latentNoise: Float = 0.5
    @Option(help: "Share of the encoder's input tokens masked in training.") var inputMasking: Float = 0
    @Option(help: "Share of whole latent vectors dropped in training.") var latentDropout: Float = 0
    @Option(help: "Weight of the MSE between the parallel decoder's predicted states and the frozen LM's.") var alignment: Float = 0.1
    @Option(help: "Weight of the parallel decoder's token loss beside the autoregressive one.") var parallelWeight: Float = 1
    @Flag(help: "Train only the autoregressive decoder (with --init-from a parallel autoencoder): the latent space stays fixed.")
    var freezeEncoder = false
    @Option(
        name: .customLong("lm-prior"),
        help:
            "Train the autoregressive decoder fused with the frozen LM: softmax(its logits + λ × the LM's log-probabilities); it then decodes with the same λ by default."
    ) var languageModelPrior: Float = 0
    @Option(
        name: .customLong("passages"),
        help:
            "Training passages: every-sentence (whole sentences from each sentence on), fixed (exactly the maximum length from each sentence on, no padding) or packed (one after another)."
    ) var passageStarts: PassageBatcher.Starts = .everySentence
    @OptionGroup var training: TrainingArguments
    @Flag(help: "Continue the run saved in --out.") var resume = false
    @Option(
        help:
            "Start from this autoencoder's weights (fine-tuning; shape options are taken from its config, the training options from this command)."
    ) var initFrom: String?

    func validate() throws {
        guard latents > 0, maxLength % latents == 0 else {
            throw ValidationError("--max-length \(maxLength) must be a multiple of --latents \(latents)")
        }
        for (name, value) in [("--input-masking", inputMasking), ("--latent-dropout", latentDropout)] where !(0..<1).contains(value) {
            throw ValidationError("\(name) must be in [0, 1), got \(value)")
        }
        try validateLanguageModelPrior(languageModelPrior)
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            let lmDirectory = fileURL(lm)
            let autoencoder: LatentAutoencoder, options: TrainingOptions, tokenizer: any Tokenizer
            if resume && initFrom != nil {
                throw ValidationError("--resume continues --out; --init-from starts a new run: give one of them")
            }
            if resume {
                autoencoder = try LatentAutoencoder.load(from: directory)
                tokenizer = try loadTokenizer(directory: lmDirectory)
                options = try readJSON(TrainingOptions.self, directory.appendingPathComponent("training.json"))
            } else {
                let gpt = try GPT.load(from: lmDirectory)
                tokenizer = try loadTokenizer(directory: lmDirectory)
                guard let eot = tokenizer.endOfTextID else {
                    throw CommandError("\(lmDirectory.path): the tokenizer has no <|endoftext|> token, which marks the end of a passage")
                }
                var config = AutoencoderConfig()
                (config.endOfText, config.padding) = (eot, tokenizer.padID ?? eot)
                config.latents = latents
                config.latentWidth = latentWidth
                config.width = width ?? gpt.config.width
                config.heads = heads ?? gpt.config.heads
                config.encoderLayers = encoderLayers
                config.decoderLayers = decoderLayers
                config.maxLength = maxLength
                config.languageModelLayer = lmLayer
                config.decoder = decoder
                config.latentNoise = latentNoise
                config.inputMasking = inputMasking
                config.latentDropout = latentDropout
                config.alignment = alignment
                config.parallelWeight = parallelWeight
                config.freezeEncoder = freezeEncoder
                config.languageModelPrior = languageModelPrior
                if freezeEncoder {
                    guard decoder == .autoregressive, initFrom != nil else {
                        throw ValidationError(
                            "--freeze-encoder trains an autoregressive decoder on a trained encoder: give --decoder autoregressive and --init-from"
                        )
                    }
                }
                config.languageModel = relativePath(from: directory, to: lmDirectory)
                guard config.width % config.heads == 0 else {
                    throw ValidationError("--width \(config.width) is not divisible by --heads \(config.heads)")
                }
                guard maxLength + 1 <= gpt.config.contextLength else {
                    throw ValidationError("--max-length \(maxLength) + 1 exceeds the LM's context length \(gpt.config.contextLength)")
                }
                guard lmLayer < gpt.config.layers else {
                    throw ValidationError("--lm-layer \(lmLayer): the LM has \(gpt.config.layers) blocks")
                }
                var source: AutoencoderConfig? = nil
                if let initFrom {
                    // The shapes must be the source's; what this command sets is how training runs.
                    let from = try ModelFolder.readConfig(AutoencoderConfig.self, in: fileURL(initFrom))
                    (config.latents, config.latentWidth, config.width, config.heads) = (
                        from.latents, from.latentWidth, from.width, from.heads
                    )
                    (config.encoderLayers, config.decoderLayers, config.maxLength) = (
                        from.encoderLayers, from.decoderLayers, from.maxLength
                    )
                    config.languageModelLayer = from.languageModelLayer
                    source = from
                }
                var rng = SeededGenerator(seed: training.seed)
                autoencoder = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
                if let initFrom, let source {
                    // A parallel autoencoder can seed an autoregressive one: its encoder and parallel decoder.
                    let file = try SafeTensorsFile(contentsOf: fileURL(initFrom).appendingPathComponent(ModelFolder.weights))
                    if source.decoder == config.decoder {
                        try autoencoder.load(file)
                    } else {
                        try autoencoder.encoder.load(file, prefix: "encoder.")
                        try autoencoder.parallel.load(file, prefix: "parallel.")
                    }
                }
                options = training.options(defaultBatchSize: 32)
            }
            let spec = try data.map { DataSpec(path: $0, separator: .auto) } ?? recordedDataSpec(dataFolders: [directory, lmDirectory])
            let cut = try passages(spec: spec, tokenizer: tokenizer, maxLength: autoencoder.config.maxLength, trainStarts: passageStarts)
            if data != nil && !resume && isLeadProcess {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try writeJSON(spec, directory.appendingPathComponent("data.json"))
            }
            let (train, validation) = (cut.train.passages, cut.validation.passages)
            printStatus(
                "\(autoencoder.trainableParameters().reduce(0) { $0 + $1.1.count }.formatted()) trainable parameters of \(autoencoder.parameterCount.formatted()) (LM frozen: \(autoencoder.languageModel.parameterCount.formatted())); \(train.count.formatted()) training and \(validation.count.formatted()) validation passages"
            )
            guard autoencoder.config.endOfText == tokenizer.endOfTextID else {
                throw CommandError(
                    "\(lmDirectory.path): the tokenizer's <|endoftext|> is not the autoencoder's end_of_text \(autoencoder.config.endOfText ?? -1)"
                )
            }
            let task = AutoencoderTask(autoencoder: autoencoder, train: train, validation: validation)
            let summary = try training.train(task, options: options, in: directory, label: "train autoencoder", resume: resume)
            print(
                String(
                    format: "step %d: train loss %.4f, validation loss %@, %.1f passages/s, %@", summary.stepsDone, summary.trainLoss,
                    summary.evaluation["val_loss"].map { String(format: "%.4f", $0) } ?? "–", summary.throughput,
                    formatDuration(summary.seconds)))
        }
    }
}

extension AutoencoderConfig.Decoder: ExpressibleByArgument {}

/// The corpus and training/validation document split recorded in the first of `dataFolders` that has a
/// `data.json`: an autoencoder trained with `--data` records its own; otherwise it is the language model's.
func recordedDataSpec(dataFolders: [URL]) throws -> DataSpec {
    guard
        let recorded = dataFolders.map({ $0.appendingPathComponent("data.json") }).first(where: {
            FileManager.default.fileExists(atPath: $0.path)
        })
    else {
        throw CommandError(
            "\(dataFolders.last!.appendingPathComponent("data.json").path): missing, so no corpus is recorded (a language model trained elsewhere, e.g. a Hugging Face folder): train the autoencoder with --data FILE"
        )
    }
    return try readJSON(DataSpec.self, recorded)
}

/// The recorded corpus's document split (see `recordedDataSpec`), tokenized.
func corpusSplits(dataFolders: [URL], tokenizer: any Tokenizer) throws -> (spec: DataSpec, splits: TokenSplits) {
    let spec = try recordedDataSpec(dataFolders: dataFolders)
    return (spec, try TokenSplits(spec: spec, tokenizer: tokenizer, cacheDirectory: defaultCacheDirectory()))
}

/// The passages of a corpus's training documents (cut as `trainStarts` says) and validation documents
/// (packed, so held-out figures compare across runs, except for fixed windows).
func passages(spec: DataSpec, tokenizer: any Tokenizer, maxLength: Int, trainStarts: PassageBatcher.Starts = .packed) throws
    -> (train: PassageBatcher, validation: PassageBatcher)
{
    let splits = try TokenSplits(spec: spec, tokenizer: tokenizer, cacheDirectory: defaultCacheDirectory())
    let train = try PassageBatcher(
        documents: splits.trainDocuments, tokenizer: tokenizer, maxLength: maxLength, starts: trainStarts, seed: spec.seed)
    // Held-out passages are packed (comparable across runs), except for fixed windows: they are what the model sees.
    let validation = try PassageBatcher(
        documents: splits.validationDocuments, tokenizer: tokenizer, maxLength: maxLength,
        starts: trainStarts == .fixed ? .fixed : .packed, seed: spec.seed)
    return (train, validation)
}

extension PassageBatcher.Starts: ExpressibleByArgument {}

/// `to` relative to the folder `from` (so a bundle can move as a whole).
func relativePath(from: URL, to: URL) -> String {
    let a = from.standardizedFileURL.pathComponents, b = to.standardizedFileURL.pathComponents
    var common = 0
    while common < min(a.count, b.count) && a[common] == b[common] { common += 1 }
    return (Array(repeating: "..", count: a.count - common) + b[common...]).joined(separator: "/")
}

/// The autoencoder and tokenizer a latent command works with.
struct AutoencoderOptions: ParsableArguments, ChoosesExecution {
    @Option(help: "Autoencoder folder.") var autoencoder: String
    @OptionGroup var precision: PrecisionOptions

    func configure(_ context: inout ExecutionContext) { precision.configure(&context) }

    func load() throws -> (LatentAutoencoder, any Tokenizer) {
        let ae = try LatentAutoencoder.load(from: fileURL(autoencoder))
        let lmDirectory = ModelFolder.resolve(ae.config.languageModel, from: fileURL(autoencoder))
        return (ae, try loadTokenizer(directory: lmDirectory))
    }
}

/// Token ids of a passage, cut to the autoencoder's limit with a warning.
func passageTokens(_ text: String, tokenizer: any Tokenizer, limit: Int) throws -> [Int32] {
    let ids = try tokenizer.encode(text)
    if ids.count > limit { warn("a passage of \(ids.count) tokens is cut to \(limit): \"\(text.prefix(40))…\"") }
    return ids.prefix(limit).map(Int32.init)
}

/// `nebula encode TEXT`: the latent of a passage.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Encode passages into latents (K × d each).")
    @OptionGroup var model: AutoencoderOptions
    @Argument(help: "Passages to encode.") var texts: [String]
    @Option(help: "Write the latents to this safetensors file (tensor \"latents\" [N, K, d]) instead of printing JSON.") var out: String?

    func run() throws {
        try reportingErrors {
            let (ae, tokenizer) = try model.load()
            let ids = try texts.map { try passageTokens($0, tokenizer: tokenizer, limit: ae.config.maxLength) }
            let z = ae.encode(ids)
            if let out {
                try writeSafeTensors(
                    [SafeTensorsEntry(name: "latents", shape: z.shape, floats: z.data)],
                    metadata: ["texts": String(decoding: try JSONEncoder().encode(texts), as: UTF8.self)], to: fileURL(out))
            } else {
                let per = ae.config.latents * ae.config.latentWidth
                let rows = (0..<texts.count).map { i in
                    "[" + z.data[(i * per)..<((i + 1) * per)].map { String(format: "%.5g", $0) }.joined(separator: ",") + "]"
                }
                print("[" + rows.joined(separator: ",\n") + "]")
            }
        }
    }
}

/// `nebula decode LATENT_FILE`: text from latents.
struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Decode latents (a safetensors file from `nebula encode --out`) to text.")
    @OptionGroup var model: AutoencoderOptions
    @Argument(help: "A safetensors file holding \"latents\" [N, K, d].") var file: String
    @Option(help: ArgumentHelp(refineHelp)) var refine = 0

    func validate() throws { try validateRefine(refine) }

    func run() throws {
        try reportingErrors {
            let (ae, tokenizer) = try model.load()
            let z = try ae.latents(in: SafeTensorsFile(contentsOf: fileURL(file)))
            var generator = SeededGenerator(seed: 0)
            for ids in ae.decode(z, refine: refine, generator: &generator) { print(try tokenizer.decode(ids)) }
        }
    }
}

let refineHelp =
    "Latent-consistent decoding: up to this many single-token edits per passage, each kept only if the edited passage re-encodes nearer the latent (0: off; about 64 encodes per passage and edit)."

func validateRefine(_ rounds: Int) throws {
    guard rounds >= 0 else { throw ValidationError("--refine must be ≥ 0, got \(rounds)") }
}

/// `nebula interpolate A B`: texts along the path between two passages' latents.
struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode points on the path between two passages' latents (spherical, per latent vector).")
    @OptionGroup var model: AutoencoderOptions
    @Argument(help: "The first passage.") var first: String
    @Argument(help: "The second passage.") var second: String
    @Option(help: "Points on the path, ends included.") var steps = 5

    func validate() throws { guard steps >= 2 else { throw ValidationError("--steps must be at least 2") } }

    func run() throws {
        try reportingErrors {
            let (ae, tokenizer) = try model.load()
            let ids = try [first, second].map { try passageTokens($0, tokenizer: tokenizer, limit: ae.config.maxLength) }
            let z = ae.encode(ids)
            let per = ae.config.latents * ae.config.latentWidth
            let a = Array(z.data[0..<per]), b = Array(z.data[per..<(2 * per)])
            let path = (0..<steps).flatMap { i in
                slerpRows(a, b, width: ae.config.latentWidth, fraction: Float(i) / Float(steps - 1))
            }
            var generator = SeededGenerator(seed: 0)
            let decoded = ae.decode(Tensor(shape: [steps, ae.config.latents, ae.config.latentWidth], data: path), generator: &generator)
            for (i, tokens) in decoded.enumerated() {
                print(String(format: "%.2f  ", Float(i) / Float(steps - 1)) + (try tokenizer.decode(tokens)))
            }
        }
    }
}

/// `nebula reconstruct`: passages through the latent bottleneck and back, with the metrics.
struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode and decode passages; report token accuracy, exact match, BLEU-4 and ROUGE-L.",
        discussion: "Without --input, the held-out passages of the language model's own validation split are used."
    )
    @OptionGroup var model: AutoencoderOptions
    @Option(help: "A text file of passages, one per line.") var input: String?
    @Option(help: "Most passages to reconstruct.") var limit = 500
    @Option(
        help:
            "Without --input: passages of the LM's held-out documents (validation) or of its training documents (train), to see overfitting."
    ) var split = "validation"
    @Option(
        name: .customLong("passages"),
        help:
            "Without --input: how the documents are cut: packed (whole sentences one after another) or fixed (exactly the maximum length from each sentence on)."
    ) var passageStarts: PassageBatcher.Starts = .packed
    @Option(
        help: "Std of Gaussian noise added to every latent before decoding, as a fraction of the latents' own std (the smoothness test).")
    var noise: Float = 0
    @Option(help: "Decode by sampling with this top-p instead of greedily (argmax).") var decodeTopP: Float?
    @Option(help: "Decode an autoregressive autoencoder's latents with its parallel decoder instead.") var decoder:
        AutoencoderConfig.Decoder?
    @Option(name: .customLong("lm-prior"), help: ArgumentHelp(lmPriorHelp)) var languageModelPrior: Float?
    @Option(help: ArgumentHelp(refineHelp)) var refine = 0
    @Flag(help: "Print one JSON object with the metrics, diagnostics and latent statistics.") var json = false
    @Flag(help: "Print every passage beside its reconstruction.") var verbose = false

    func validate() throws {
        try validateLanguageModelPrior(languageModelPrior)
        try validateRefine(refine)
    }

    func run() throws {
        try reportingErrors {
            let (ae, tokenizer) = try model.load()
            let references: [[Int32]]
            if let input {
                let lines = try readText(input).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
                guard !lines.isEmpty else { throw CommandError("\(input): no passages (one per line expected)") }
                references = try lines.prefix(limit).map { try passageTokens($0, tokenizer: tokenizer, limit: ae.config.maxLength) }
            } else {
                let lmDirectory = ModelFolder.resolve(ae.config.languageModel, from: fileURL(model.autoencoder))
                let both = try passages(
                    spec: recordedDataSpec(dataFolders: [fileURL(model.autoencoder), lmDirectory]), tokenizer: tokenizer,
                    maxLength: ae.config.maxLength, trainStarts: passageStarts)
                switch split {
                case "validation": references = both.validation.passages.prefix(limit).map(\.tokens)
                case "train": references = both.train.passages.prefix(limit).map(\.tokens)
                default: throw ValidationError("--split must be validation or train, got \(split)")
                }
            }
            var evaluation = ReconstructionEvaluation(autoencoder: ae, tokenizer: tokenizer)
            evaluation.noise = noise
            evaluation.decoding = decodeTopP.map { SamplingOptions(temperature: 1, topP: $0) } ?? SamplingOptions(temperature: 0)
            (evaluation.decoder, evaluation.languageModelPrior, evaluation.refine) = (decoder, languageModelPrior, refine)
            let result = try evaluation.run(references)
            let (metrics, figures) = (result.metrics, result.figures)
            let (referenceTexts, reconstructedTexts) = (result.referenceTexts, result.reconstructedTexts)
            let d = ae.config.latentWidth
            if verbose {
                for (a, b) in zip(referenceTexts, reconstructedTexts) {
                    print("  \(a.replacingOccurrences(of: "\n", with: " "))\n→ \(b.replacingOccurrences(of: "\n", with: " "))\n")
                }
            }
            if json {
                let body = figures.keys.sorted().map { String(format: "\"%@\": %.6g", $0, figures[$0]!) }.joined(separator: ", ")
                print("{" + body + "}")
            } else {
                let refined = refine == 0 ? "" : ", refined by up to \(refine) edits"
                print(
                    String(
                        format: "passages        %d (K × d = %d × %d, %@ decoder%@)", references.count, ae.config.latents, d,
                        (decoder ?? ae.config.decoder).rawValue, refined))
                print(String(format: "token accuracy  %.2f%%", 100 * metrics.tokenAccuracy))
                print(String(format: "exact match     %.2f%%", 100 * metrics.exactMatch))
                print(String(format: "BLEU-4          %.2f", metrics.bleu4))
                print(String(format: "ROUGE-L         %.4f", metrics.rougeL))
                print(
                    String(
                        format: "latents         std %.4f, vector norm %.3f (√d = %.3f), between-passage share %.3f",
                        figures["latent_std"]!,
                        figures["latent_norm"]!, Double(d).squareRoot(), figures["latent_between_share"] ?? 0))
                print(
                    String(
                        format: "losses          own %.4f, shuffled latent %.4f", figures["val_loss"] ?? .nan,
                        figures["val_loss_shuffled"] ?? .nan))
                print(String(format: "decoding        %.1f passages/s", figures["passages_per_second"]!))
            }
        }
    }
}
