import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// libFuzzer targets for every parser of files from outside (issue #16), in one binary built by `make fuzz`
/// with `-sanitize=fuzzer,address`. `NEBULA_FUZZ_TARGET` picks the target; `NEBULA_FUZZ_SEEDS=DIR` writes a
/// valid input of each target into `DIR/<target>/` and exits (the starting corpus).
///
/// Besides not crashing, targets check what must hold: a tokenizer that loads encodes and decodes text back
/// exactly, and byte-level BPE round-trips every input byte for byte.
enum FuzzTarget: String, CaseIterable {
    /// `SafeTensorsFile(data:)` and reading every tensor.
    case safetensors
    /// `vocab.json` + `merges.txt` (split at the input's first 0 byte).
    case vocabMerges = "vocab-merges"
    /// A Hugging Face `tokenizer.json`.
    case tokenizerJSON = "tokenizer-json"
    /// A WordPiece `tokenizer.json` (the judge's): loaded, then every text must encode to ids of its vocabulary.
    case wordPiece = "wordpiece"
    /// GPT-2's byte-level BPE: encode, then decode, must give the input back.
    case bpeRoundTrip = "bpe-roundtrip"
    /// The corpus reader (first byte: .txt or .jsonl, and the separator).
    case corpus
    /// A model folder's `config.json` (first byte: Nebula GPT, Hugging Face GPT-2, or autoencoder) loaded
    /// beside valid weights.
    case config
    /// The latent file `nebula decode` reads.
    case latents
}

/// What the targets share, made once per process.
final class FuzzState: @unchecked Sendable {
    let target: FuzzTarget
    let scratch: URL
    lazy var gpt2: ByteLevelBPE = {
        let data = ProcessInfo.processInfo.environment["NEBULA_FUZZ_GPT2"] ?? "../shared/data/gpt2"
        return try! ByteLevelBPE(
            vocabulary: URL(fileURLWithPath: data + "/encoder.json"), merges: URL(fileURLWithPath: data + "/vocab.bpe"))
    }()
    lazy var autoencoder: LatentAutoencoder = {
        var rng = SeededGenerator(seed: 1)
        let lm = GPT(GPTConfig(vocabSize: 300, contextLength: 17, layers: 1, heads: 2, width: 8), generator: &rng)
        var config = AutoencoderConfig()
        (config.latents, config.latentWidth, config.width, config.heads, config.maxLength) = (4, 8, 8, 2, 16)
        (config.encoderLayers, config.decoderLayers, config.decoder, config.endOfText) = (1, 1, .parallel, 0)
        return LatentAutoencoder(config, languageModel: lm, generator: &rng)
    }()

    init(target: FuzzTarget) throws {
        self.target = target
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        if target == .config { try writeModelFolders() }
    }

    /// Valid weights for the config target: a tiny Nebula GPT at lm/, the same as a Hugging Face folder at hf/,
    /// and an autoencoder reading lm/ at ae/.
    func writeModelFolders() throws {
        let lm = autoencoder.languageModel
        try lm.save(to: scratch.appendingPathComponent("lm"))
        try HuggingFaceGPT2.save(lm, to: scratch.appendingPathComponent("hf"), endOfText: nil)
        try autoencoder.save(to: scratch.appendingPathComponent("ae"))
    }

    /// A valid input of the target: the starting corpus.
    func seed() throws -> Data {
        switch target {
        case .safetensors:
            return try safetensorsBytes([
                SafeTensorsEntry(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                SafeTensorsEntry(name: "h", shape: [2], floats: [1, 2], dtype: .f16),
                SafeTensorsEntry(name: "ids", shape: [2], integers: [7, 9])
            ])
        case .vocabMerges:
            let vocabulary = Dictionary(
                uniqueKeysWithValues: (0..<256).map { (String(ByteLevelAlphabet.character(for: UInt8($0))), $0) } + [("he", 256)])
            return try JSONSerialization.data(withJSONObject: vocabulary) + Data([0]) + Data("#version: 0.2\nh e\n".utf8)
        case .tokenizerJSON:
            return try Data(contentsOf: scratch.appendingPathComponent("seed-tokenizer/tokenizer.json"))
        case .wordPiece:
            let vocabulary = ["[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "once": 3, "up": 4, "##on": 5, "a": 6, ",": 7]
            return try JSONSerialization.data(
                withJSONObject: [
                    "normalizer": ["type": "BertNormalizer", "lowercase": true], "pre_tokenizer": ["type": "BertPreTokenizer"],
                    "truncation": ["max_length": 16],
                    "model": [
                        "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                        "vocab": vocabulary
                    ]
                ] as [String: Any], options: [.sortedKeys])
        case .bpeRoundTrip: return Data("Once upon a time, 42 cats said \"héllo\" 🐈\n<|endoftext|>".utf8)
        case .corpus: return Data([0]) + Data("One story.\n<|endoftext|>\nAnother one.\n".utf8)
        case .config: return Data([0]) + (try Data(contentsOf: scratch.appendingPathComponent("lm/config.json")))
        case .latents:
            return try safetensorsBytes([SafeTensorsEntry(name: "latents", shape: [1, 4, 8], floats: (0..<32).map { Float($0) / 32 })])
        }
    }

    func safetensorsBytes(_ entries: [SafeTensorsEntry]) throws -> Data {
        let url = scratch.appendingPathComponent("seed.safetensors")
        try writeSafeTensors(entries, to: url)
        return try Data(contentsOf: url)
    }

    /// A tokenizer that loaded from fuzzed files must still turn text into ids and back exactly.
    func checkRoundTrip(_ tokenizer: ByteLevelBPE) {
        for text in ["Hello, world! 123", "ünïcödé 🐈 text\n\t ", ""] {
            let ids = tokenizer.encode(text)
            guard (try? tokenizer.decode(ids)) == text else { fatalError("round trip failed for \(text.debugDescription): \(ids)") }
        }
    }

    func run(_ data: Data) {
        switch target {
        case .safetensors:
            guard let file = try? SafeTensorsFile(data: data) else { return }
            for info in file.tensors {
                _ = try? file.floats(info.name)
                _ = try? file.integers(info.name)
            }
        case .vocabMerges:
            let split = data.firstIndex(of: 0) ?? data.endIndex
            let (vocabulary, merges) = (scratch.appendingPathComponent("vocab.json"), scratch.appendingPathComponent("merges.txt"))
            try! data[data.startIndex..<split].write(to: vocabulary)
            try! data[min(split + 1, data.endIndex)...].write(to: merges)
            if let tokenizer = try? ByteLevelBPE(vocabulary: vocabulary, merges: merges) { checkRoundTrip(tokenizer) }
        case .tokenizerJSON:
            let url = scratch.appendingPathComponent("tokenizer.json")
            try! data.write(to: url)
            if let tokenizer = try? ByteLevelBPE(huggingFaceFile: url) { checkRoundTrip(tokenizer) }
        case .wordPiece:
            let url = scratch.appendingPathComponent("tokenizer.json")
            try! data.write(to: url)
            guard let tokenizer = try? WordPieceTokenizer(huggingFaceFile: url) else { return }
            let ids = Set(tokenizer.vocabulary.values)
            for text in ["Once upon a time, ÜNÏCÖDÉ 東京 🐈\u{0}\t text", "", String(repeating: "a", count: 300)] {
                let encoded = tokenizer.encode(text)
                guard encoded.count <= max(2, tokenizer.maxLength), encoded.allSatisfy(ids.contains) else {
                    fatalError("WordPiece encoded \(text.debugDescription) to ids outside its vocabulary or limit: \(encoded)")
                }
            }
        case .bpeRoundTrip:
            let text = String(decoding: data, as: UTF8.self)
            let ids = gpt2.encode(text)
            guard (try? gpt2.decodeBytes(ids)) == Array(text.utf8) else {
                fatalError("GPT-2 BPE round trip failed: \(text.debugDescription)")
            }
            let special = gpt2.encode(text, allowedSpecial: .all)
            guard (try? gpt2.decode(special)) == text else {
                fatalError("GPT-2 BPE round trip (specials allowed) failed: \(text.debugDescription)")
            }
        case .corpus:
            guard let first = data.first else { return }
            let url = scratch.appendingPathComponent(first & 1 == 0 ? "corpus.txt" : "corpus.jsonl")
            try! data.dropFirst().write(to: url)
            let separators: [CorpusOptions.Separator] = [.endOfText, .blankLines, .auto]
            let options = CorpusOptions(separator: separators[Int(first >> 1) % 3], replaceInvalidUTF8: first & 0x80 != 0)
            _ = try? Corpus(contentsOf: url, options: options)
        case .config:
            guard let first = data.first else { return }
            let folder = scratch.appendingPathComponent(["lm", "hf", "ae"][Int(first) % 3])
            let url = folder.appendingPathComponent(ModelFolder.config)
            let original = try! Data(contentsOf: url)
            try! data.dropFirst().write(to: url)
            if folder.lastPathComponent == "ae" { _ = try? LatentAutoencoder.load(from: folder) } else { _ = try? GPT.load(from: folder) }
            try! original.write(to: url)
        case .latents:
            guard let file = try? SafeTensorsFile(data: data) else { return }
            _ = try? autoencoder.latents(in: file)
        }
    }
}

/// Unchecked, and safe: libFuzzer calls the entry point on one thread, which alone reads and writes it.
nonisolated(unsafe) var state: FuzzState!

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    state.run(Data(bytes: bytes, count: count))
    return 0
}

/// libFuzzer's driver, called with the program's arguments (corpus folders, -max_total_time=…).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

/// The program's entry point (SwiftPM links an executable target's `main` to `<module>_main`).
@_cdecl("NebulaFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    let environment = ProcessInfo.processInfo.environment
    if let seeds = environment["NEBULA_FUZZ_SEEDS"] {
        for target in FuzzTarget.allCases {
            let folder = URL(fileURLWithPath: seeds).appendingPathComponent(target.rawValue)
            try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let maker = try! FuzzState(target: target)
            if target == .tokenizerJSON {  // a real tokenizer.json: trained here, saved by Nebula
                let trained = try! BPETrainer(vocabularySize: 300).train(documents: ["hello world, hello fuzzing world"])
                try! trained.save(to: maker.scratch.appendingPathComponent("seed-tokenizer"))
            }
            try! maker.seed().write(to: folder.appendingPathComponent("seed"))
        }
        return 0
    }
    guard let name = environment["NEBULA_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(
            Data("set NEBULA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        return 2
    }
    state = try! FuzzState(target: target)
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, testOneInput)
}
