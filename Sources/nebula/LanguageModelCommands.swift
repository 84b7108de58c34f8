import ArgumentParser
import Foundation
import NebulaEval
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// Where the training text comes from and how it is split.
struct DataOptions: ParsableArguments {
    @Option(help: "Corpus: a .txt file, a .jsonl file with a \"text\" field, or a folder of them.") var data: String
    @Option(help: "Document separator in .txt files: endOfText (<|endoftext|> lines), blankLines, or auto (per file).") var separator:
        CorpusOptions.Separator = .auto
    @Option(help: "Validation split: documents (seeded subset of documents) or tail (last part of the token stream, as nanoGPT).")
    var split: DataSpec.SplitKind = .documents
    @Option(help: "Fraction of the data held out for validation.") var valFraction = 0.05
    @Option(help: "Seed of the document split.") var splitSeed: UInt64 = 1337

    var spec: DataSpec {
        DataSpec(path: data, separator: separator, split: split, validationFraction: valFraction, seed: splitSeed)
    }

    func validate() throws {
        guard valFraction > 0 && valFraction < 1 else {
            throw ValidationError("--val-fraction must be between 0 and 1, got \(valFraction)")
        }
    }
}

extension DataSpec.SplitKind: ExpressibleByArgument {}

/// `nebula train lm`: trains a GPT on next-token prediction.
struct TrainLanguageModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Train a GPT language model on a corpus.",
        discussion: """
            Writes a model folder: config.json, model.safetensors, tokenizer files, data.json, training.json, \
            training_state.safetensors, log.jsonl and loss.svg. Ctrl-C saves a checkpoint; --resume continues \
            it exactly, with the settings saved in the folder.
            Example (nanoGPT's CPU run): nebula train lm --data input.txt --char --split tail --val-fraction 0.1 \
            --preset mini --out runs/shakespeare
            """
    )

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Tokenizer folder (GPT-2 or Nebula BPE files).") var tokenizer: String?
    @Flag(help: "Use a character tokenizer built from the corpus.") var char = false
    @Option(help: "Model size: \(GPTConfig.presetNames.joined(separator: ", ")).") var preset = "mini"
    @Option(help: "Transformer blocks (overrides the preset).") var layers: Int?
    @Option(help: "Attention heads (overrides the preset).") var heads: Int?
    @Option(help: "Model width (overrides the preset).") var width: Int?
    @Option(help: "Context length in tokens (overrides the preset).") var context: Int?
    @OptionGroup var training: TrainingArguments
    @Option(help: "Output model folder.") var out: String
    @Flag(help: "Continue the run saved in --out.") var resume = false

    func validate() throws {
        if !resume && (tokenizer == nil) == !char { throw ValidationError("give exactly one of --tokenizer DIR or --char") }
        if GPTConfig.preset(preset, vocabSize: 1) == nil {
            throw ValidationError("unknown --preset \(preset): use \(GPTConfig.presetNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(out)
            let spec: DataSpec, tok: any Tokenizer, model: GPT, options: TrainingOptions
            if resume {
                spec = try readJSON(DataSpec.self, directory.appendingPathComponent("data.json"))
                options = try readJSON(TrainingOptions.self, directory.appendingPathComponent("training.json"))
                tok = try loadTokenizer(directory: directory)
                model = try GPT.load(from: directory)
            } else {
                spec = dataOptions.spec
                if let tokenizer {
                    tok = try loadTokenizer(directory: fileURL(tokenizer))
                } else {
                    tok = CharTokenizer(
                        corpus: try Corpus(contentsOf: spec.url, options: spec.corpusOptions).documents.joined(),
                        specialTokens: [SpecialToken.endOfText])
                }
                var config = GPTConfig.preset(preset, vocabSize: tok.vocabularySize, contextLength: context)!
                config.layers = layers ?? config.layers
                config.heads = heads ?? config.heads
                config.width = width ?? config.width
                guard config.width % config.heads == 0 else {
                    throw ValidationError("--width \(config.width) is not divisible by --heads \(config.heads)")
                }
                var rng = SeededGenerator(seed: training.seed)
                model = GPT(config, generator: &rng)
                options = training.options(defaultBatchSize: 12)
            }
            printStatus("tokenizing \(spec.path) …")
            let data = try TokenSplits(spec: spec, tokenizer: tok, cacheDirectory: defaultCacheDirectory())
            guard data.train.count > model.config.contextLength + 1 else {
                throw CommandError(
                    "\(spec.path): \(data.train.count) training tokens, too few for one window of the context (\(model.config.contextLength) + 1): a larger corpus, or a shorter --context"
                )
            }
            if !resume && isLeadProcess {  // written only once the corpus has been read: bad input leaves no folder behind
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try writeJSON(spec, directory.appendingPathComponent("data.json"))
                try saveTokenizer(tok, to: directory)
            }
            printStatus(
                "\(model.parameterCount.formatted()) parameters; \(data.train.count.formatted()) training and \(data.validation.count.formatted()) validation tokens"
            )
            let task = LanguageModelTask(model: model, train: data.train, validation: data.validation)
            let summary = try training.train(task, options: options, in: directory, label: "train lm", resume: resume)
            let validation = summary.evaluation["val_loss"].map { String(format: "%.4f", $0) } ?? "–"
            print(
                String(
                    format: "step %d: train loss %.4f, validation loss %@, %.0f tokens/s, %@",
                    summary.stepsDone, summary.trainLoss, validation, summary.throughput, formatDuration(summary.seconds)))
        }
    }
}

/// `nebula eval lm`: held-out loss, perplexity, next-token accuracy and the next-word test.
struct EvaluateLanguageModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Evaluate a language model: perplexity, next-token accuracy and the next-word test.",
        discussion: "Without --data, the validation split recorded in the model folder is used."
    )

    @Option(help: "Model folder.") var model: String
    @Option(help: "Held-out text (a corpus file); default: the model's own validation split.") var data: String?
    @Option(help: "Next-word prompts: a file of `prompt<TAB>expected word` lines; default: cut from the held-out text.") var prompts:
        String?
    @Option(help: "Number of next-word prompts cut from the held-out text.") var promptCount = 500
    @Option(help: "Most held-out tokens scored for perplexity and accuracy.") var maxTokens = 200_000
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "List every next-word prompt with the model's word.") var verbose = false

    func run() throws {
        try reportingErrors {
            let directory = fileURL(model)
            let gpt = try GPT.load(from: directory)
            let tok = try loadTokenizer(directory: directory)
            let heldOut: [Int32], documents: [String]
            if let data {
                let corpus = try Corpus(contentsOf: fileURL(data))
                documents = corpus.documents
                heldOut = try documents.flatMap { try tok.encode($0).map(Int32.init) }
            } else {
                let recorded = directory.appendingPathComponent("data.json")
                guard FileManager.default.fileExists(atPath: recorded.path) else {
                    throw CommandError(
                        "\(recorded.path): missing, so there is no recorded validation split (a model trained elsewhere, e.g. a Hugging Face folder): pass --data FILE"
                    )
                }
                let spec = try readJSON(DataSpec.self, recorded)
                let splits = try TokenSplits(spec: spec, tokenizer: tok, cacheDirectory: defaultCacheDirectory())
                heldOut = splits.validation
                documents = splits.validationDocuments
            }
            guard heldOut.count >= 2 else {
                throw CommandError("\(data ?? "the validation split"): \(heldOut.count) held-out token(s), too few to score (at least 2)")
            }
            let scoringStart = Date()
            let metrics = LanguageModelMetrics(model: gpt, heldOut: heldOut, maxTokens: maxTokens)
            let tokensPerSecond = Double(metrics.tokens) / Date().timeIntervalSince(scoringStart)
            let cases =
                try prompts.map { try NextWordTest.cases(fromFile: fileURL($0)) }
                ?? NextWordTest.cases(from: documents, count: promptCount)
            let outcomes = try NextWordTest(cases: cases).run(model: gpt, tokenizer: tok)
            let accuracy = NextWordTest.accuracy(outcomes)
            if verbose {
                for o in outcomes {
                    print(
                        "\(o.correct ? "✓" : "✗") …\(o.testCase.prompt.suffix(50).replacingOccurrences(of: "\n", with: " ")) → \(o.predicted) (expected \(o.testCase.expected))"
                    )
                }
            }
            if json {
                print(
                    String(
                        format:
                            "{\"val_loss\": %.6f, \"perplexity\": %.4f, \"top1\": %.6f, \"top5\": %.6f, \"next_word_accuracy\": %.6f, \"tokens\": %d, \"tokens_per_s\": %.1f, \"prompts\": %d}",
                        metrics.validationLoss, metrics.perplexity, metrics.top1, metrics.top5, accuracy, metrics.tokens, tokensPerSecond,
                        outcomes.count))
            } else {
                print("model           \(directory.lastPathComponent) (\(gpt.parameterCount.formatted()) parameters)")
                print(
                    String(
                        format: "val loss        %.4f  (%d tokens, scored at %.0f tokens/s)", metrics.validationLoss, metrics.tokens,
                        tokensPerSecond))
                print(String(format: "perplexity      %.3f", metrics.perplexity))
                print(String(format: "top-1 accuracy  %.2f%%", 100 * metrics.top1))
                print(String(format: "top-5 accuracy  %.2f%%", 100 * metrics.top5))
                print(String(format: "next-word test  %.2f%%  (%d prompts)", 100 * accuracy, outcomes.count))
            }
        }
    }
}

/// `nebula sample`: continues a prompt with a trained GPT, streaming tokens as they arrive.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text with a language model (KV cache, temperature, top-k, top-p).")

    @Option(help: "Model folder.") var model: String
    @Option(help: "Text to continue.") var prompt = ""
    @Option(help: "Tokens to generate.") var maxTokens = 200
    @Option(help: "Sampling temperature (0 = greedy).") var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0 = all).") var topK = 0
    @Option(help: "Nucleus sampling threshold (1 = off).") var topP: Float = 0.95
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Number of samples.") var samples = 1
    @OptionGroup var precision: PrecisionOptions
    @Flag(
        help:
            "One JSON object per sample, a line each: text (the continuation), tokens (its ids, without a final end-of-text), finish_reason, prompt_tokens, seconds."
    ) var json = false

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let directory = fileURL(model)
            let gpt = try GPT.load(from: directory)
            let tok = try loadTokenizer(directory: directory)
            var ids = try tok.encode(prompt)
            if ids.isEmpty {
                guard let eot = tok.endOfTextID else { throw ValidationError("this tokenizer has no <|endoftext|>: give a --prompt") }
                ids = [eot]
            }
            if ids.count >= gpt.config.contextLength {
                warn(
                    "the prompt has \(ids.count) tokens; keeping the last \(gpt.config.contextLength - 1) (the context length is \(gpt.config.contextLength))"
                )
            }
            var generator = SeededGenerator(seed: seed)
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            if json {
                for _ in 0..<samples {
                    let start = Date()
                    var tokens = gpt.generate(
                        prompt: ids, maxTokens: maxTokens, options: options, stopToken: tok.endOfTextID, generator: &generator)
                    let stopped = tok.endOfTextID != nil && tokens.last == tok.endOfTextID
                    if stopped { tokens.removeLast() }
                    let line = SampleLine(
                        text: try tok.decode(tokens), tokens: tokens, finishReason: stopped ? "stop" : "length",
                        promptTokens: ids.count, seconds: Date().timeIntervalSince(start))
                    print(String(decoding: try encoder.encode(line), as: UTF8.self))
                }
                return
            }
            for n in 0..<samples {
                if samples > 1 { print("── sample \(n + 1) ──") }
                FileHandle.standardOutput.write(Data(prompt.utf8))
                var pending: [Int] = []
                let start = Date()
                let tokens = gpt.generate(
                    prompt: ids, maxTokens: maxTokens, options: options, stopToken: tok.endOfTextID, generator: &generator
                ) { token in
                    // Stream whole characters: hold back bytes until they decode without replacement.
                    pending.append(token)
                    if token != tok.endOfTextID, let text = try? tok.decode(pending), !text.hasSuffix("\u{FFFD}") {
                        FileHandle.standardOutput.write(Data(text.utf8))
                        pending = []
                    }
                    return true
                }
                print("")
                let seconds = Date().timeIntervalSince(start)
                printStatus(
                    String(
                        format: "%d tokens in %.2f s (%.1f tokens/s, the %d-token prompt included)", tokens.count, seconds,
                        Double(tokens.count) / seconds, ids.count))
            }
        }
    }
}

/// A line of `nebula sample --json`.
struct SampleLine: Encodable {
    let text: String
    let tokens: [Int]
    let finishReason: String
    let promptTokens: Int
    /// Wall-clock seconds of the generation (prompt and every token).
    let seconds: Double

    enum CodingKeys: String, CodingKey {
        case text, tokens, finishReason = "finish_reason", promptTokens = "prompt_tokens", seconds
    }
}

func readJSON<T: Decodable>(_ type: T.Type, _ url: URL) throws -> T {
    guard let data = FileManager.default.contents(atPath: url.path) else { throw ModelFolderError(url, "missing") }
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw ModelFolderError(url, "not valid: \(error.localizedDescription)")
    }
}

func writeJSON<T: Encodable>(_ value: T, _ url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try DurableFile.write(encoder.encode(value), to: url)
}
