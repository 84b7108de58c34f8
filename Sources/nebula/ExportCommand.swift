import ArgumentParser
import Foundation
import NebulaTensor
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaText

/// `nebula export`: a model folder without its training state, weights in half precision.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Copy a model folder for shipping: configs, tokenizer, logs and plot, weights converted (F16 by default); no optimizer state or caches."
    )
    @Option(help: "The model folder to export.") var from: String
    @Option(help: "The destination folder (created; files in it are replaced).") var to: String
    @Option(
        help:
            "nebula (the folder as Nebula reads it) or huggingface (a GPT-2 folder for transformers' GPT2LMHeadModel and AutoTokenizer; language models only)."
    ) var format: Format = .nebula
    @Option(help: "Weight dtype: F32, F16 or BF16 (default: F16; F32 for --format huggingface).") var dtype: String?
    @Option(help: "For an autoencoder: the LM folder its exported config should name (e.g. the bundle's lm/).") var languageModel: String?
    @Option(help: "For a denoiser: the autoencoder folder its exported config should name (e.g. the bundle's autoencoder/).")
    var autoencoder: String?
    @Option(help: "For a denoiser: the noise scale the bundle samples with by default (config.json's sampling.noise_scale).")
    var noiseScale: Float?
    @Option(
        parsing: .upToNextOption,
        help: "For a denoiser: noise scales by step count, STEPS=SCALE each, e.g. 4=2.5 50=1.6 (sampling.noise_scale_by_steps).")
    var noiseScaleBySteps: [String] = []
    @Option(
        name: .customLong("lm-prior"), help: "For a denoiser: the LM prior its samples are decoded with by default (sampling.lm_prior).")
    var languageModelPrior: Float?
    @Flag(
        inversion: .prefixedNo,
        help: "For a denoiser: whether its sampler renormalises x0 estimates by default (sampling.renormalize_estimates).")
    var renormalizeEstimates: Bool?
    @Option(
        name: .customLong("infill-lm-prior"),
        help: "For a denoiser: the LM prior its infills are decoded with by default (sampling.infill.lm_prior).")
    var infillLanguageModelPrior: Float?
    @Option(help: "For a denoiser: loops an infill runs by default, the likeliest kept (sampling.infill.candidates).")
    var infillCandidates: Int?

    static let copied = [
        "config.json", "data.json", "training.json", "log.jsonl", "loss.svg",
        "vocab.json", "merges.txt", "tokenizer.json", "char_tokenizer.json"
    ]

    enum Format: String, ExpressibleByArgument { case nebula, huggingface }

    /// Whether any of the denoiser's sampling defaults is given.
    var setsSamplingDefaults: Bool {
        noiseScale != nil || languageModelPrior != nil || renormalizeEstimates != nil || !noiseScaleBySteps.isEmpty
            || infillLanguageModelPrior != nil || infillCandidates != nil
    }

    /// `--noise-scale-by-steps` as a table (validate() has checked every entry).
    var stepsTable: [Int: Float] {
        Dictionary(
            uniqueKeysWithValues: noiseScaleBySteps.map { entry in
                let parts = entry.split(separator: "=")
                return (Int(parts[0])!, Float(parts[1])!)
            })
    }

    func validate() throws {
        try validateFlags(GenerationRequest(noiseScale: noiseScale, languageModelPrior: languageModelPrior))
        try validateLanguageModelPrior(infillLanguageModelPrior, flag: "--infill-lm-prior")
        if let infillCandidates, infillCandidates < 1 {
            throw ValidationError("--infill-candidates must be positive, got \(infillCandidates)")
        }
        for entry in noiseScaleBySteps {
            let parts = entry.split(separator: "=")
            guard parts.count == 2, let steps = Int(parts[0]), steps >= 1, let scale = Float(parts[1]),
                SamplingDefaults.noiseScaleRange.contains(scale)
            else {
                throw ValidationError("--noise-scale-by-steps entries are STEPS=SCALE with STEPS ≥ 1 and SCALE in [0, 4], got \(entry)")
            }
        }
        guard Set(noiseScaleBySteps.map { $0.split(separator: "=").first }).count == noiseScaleBySteps.count else {
            throw ValidationError("--noise-scale-by-steps names a step count twice")
        }
    }

    func run() throws {
        try reportingErrors {
            let name = dtype ?? (format == .huggingface ? "F32" : "F16")
            guard let type = SafeTensorsDType(rawValue: name.uppercased()), [.f32, .f16, .bf16].contains(type) else {
                throw ValidationError("--dtype must be F32, F16 or BF16, got \(name)")
            }
            let (source, destination) = (fileURL(from), fileURL(to))
            if format == .huggingface {
                try exportHuggingFace(from: source, to: destination, dtype: type)
                return
            }
            // The source is read whole before anything is written: a bad source leaves no destination behind.
            let weights = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
            let entries = try weights.tensors.map {
                SafeTensorsEntry(name: $0.name, shape: $0.shape, floats: try weights.floats($0.name), dtype: type)
            }
            let sourceConfig = source.appendingPathComponent("config.json")
            if setsSamplingDefaults {
                let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: sourceConfig)) as? [String: Any]
                guard object?["autoencoder"] is String else {
                    throw CommandError("\(sourceConfig.path): not a denoiser's config; sampling defaults apply to denoisers only")
                }
            }
            let manager = FileManager.default
            try manager.createDirectory(at: destination, withIntermediateDirectories: true)
            for name in Self.copied where manager.fileExists(atPath: source.appendingPathComponent(name).path) {
                try copyReplacing(source.appendingPathComponent(name), destination.appendingPathComponent(name))
            }
            try relink(
                config: destination.appendingPathComponent("config.json"), key: "language_model", to: languageModel, from: destination)
            try relink(config: destination.appendingPathComponent("config.json"), key: "autoencoder", to: autoencoder, from: destination)
            try setSamplingDefaults(config: destination.appendingPathComponent("config.json"))
            try writeSafeTensors(entries, metadata: weights.metadata, to: destination.appendingPathComponent("model.safetensors"))
            print("\(source.path) → \(destination.path) (\(entries.count) tensors, \(type.rawValue))")
        }
    }

    /// A language-model folder as a Hugging Face GPT-2 folder: config and weights, the byte-level BPE's files and
    /// a `tokenizer_config.json` naming `<|endoftext|>`.
    func exportHuggingFace(from source: URL, to destination: URL, dtype: SafeTensorsDType) throws {
        guard languageModel == nil && autoencoder == nil && !setsSamplingDefaults else {
            throw ValidationError(
                "--format huggingface exports a language model; --language-model, --autoencoder and the sampling defaults do not apply")
        }
        let gpt = try GPT.load(from: source)
        let tokenizer = try loadTokenizer(directory: source)
        guard tokenizer is ByteLevelBPE else {
            throw CommandError(
                "\(source.path): a \(type(of: tokenizer)) has no GPT-2 tokenizer files; only byte-level BPE models export to Hugging Face")
        }
        try HuggingFaceGPT2.save(gpt, to: destination, endOfText: tokenizer.endOfTextID, dtype: dtype)
        let manager = FileManager.default
        // Hugging Face's names for the BPE files; OpenAI's originals (encoder.json, vocab.bpe) hold the same.
        for (names, target) in [
            (["vocab.json", "encoder.json"], "vocab.json"), (["merges.txt", "vocab.bpe"], "merges.txt"),
            (["tokenizer.json"], "tokenizer.json")
        ] {
            guard let name = names.first(where: { manager.fileExists(atPath: source.appendingPathComponent($0).path) }) else { continue }
            try copyReplacing(source.appendingPathComponent(name), destination.appendingPathComponent(target))
        }
        var settings: [String: Any] = [
            "tokenizer_class": "GPT2Tokenizer", "model_max_length": gpt.config.contextLength,
            "add_prefix_space": false
        ]
        if tokenizer.endOfTextID != nil {
            for key in ["bos_token", "eos_token", "unk_token"] { settings[key] = "<|endoftext|>" }
        }
        try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys])
            .write(to: destination.appendingPathComponent("tokenizer_config.json"), options: .atomic)
        print("\(source.path) → \(destination.path) (GPT-2 for transformers, \(gpt.namedParameters().count) tensors, \(dtype.rawValue))")
    }

    /// Copies `source` to `target`, replacing a file already there.
    func copyReplacing(_ source: URL, _ target: URL) throws {
        if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
        try FileManager.default.copyItem(at: source, to: target)
    }

    /// Records `--noise-scale`, `--noise-scale-by-steps`, `--lm-prior` and `--[no-]renormalize-estimates` as a denoiser config's `sampling`
    /// defaults (`run` has checked it is one).
    func setSamplingDefaults(config: URL) throws {
        guard setsSamplingDefaults else { return }
        try editConfig(config) { object in
            var sampling = object["sampling"] as? [String: Any] ?? [:]
            if let noiseScale { sampling["noise_scale"] = Double("\(noiseScale)")! }
            if !noiseScaleBySteps.isEmpty {
                sampling["noise_scale_by_steps"] = Dictionary(
                    uniqueKeysWithValues: stepsTable.map { ("\($0.key)", Double("\($0.value)")!) })
            }
            if let languageModelPrior { sampling["lm_prior"] = Double("\(languageModelPrior)")! }
            if let renormalizeEstimates { sampling["renormalize_estimates"] = renormalizeEstimates }
            var infill = sampling["infill"] as? [String: Any] ?? [:]
            if let infillLanguageModelPrior { infill["lm_prior"] = Double("\(infillLanguageModelPrior)")! }
            if let infillCandidates { infill["candidates"] = infillCandidates }
            if !infill.isEmpty { sampling["infill"] = infill }
            object["sampling"] = sampling
        }
    }

    /// Points the config's `key` (a folder path relative to the model folder) at `target`.
    func relink(config: URL, key: String, to target: String?, from destination: URL) throws {
        guard let target else { return }
        try editConfig(config) { object in
            guard object[key] is String else { throw CommandError("\(config.path): no \"\(key)\" entry to point at \(target)") }
            guard FileManager.default.fileExists(atPath: fileURL(target).appendingPathComponent("config.json").path) else {
                throw CommandError("\(target): not a model folder (no config.json)")
            }
            object[key] = relativePath(from: destination, to: fileURL(target))
        }
    }

    /// Reads a config as a JSON object, lets `edit` change it, writes it back (atomically).
    func editConfig(_ config: URL, _ edit: (inout [String: Any]) throws -> Void) throws {
        guard var object = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any] else {
            throw CommandError("\(config.path): not a JSON object")
        }
        try edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]).write(
            to: config, options: .atomic)
    }
}
