import ArgumentParser
import Foundation
import NebulaText

/// `nebula-bench tokenizer`: GPT-2 encoding speed (one thread and all cores) and BPE training time.
struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encoder MB/s (GPT-2 vocabulary, 1 thread and all cores), 4096-token BPE training time, token cache build.")

    @Option(help: "The shared data folder.") var data = "../shared/data"
    @Option(help: "Timed repetitions; the best is reported.") var repeats = 5

    func run() throws {
        let root = URL(fileURLWithPath: data)
        let gpt2Folder = root.appendingPathComponent("gpt2")
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let gpt2 = try ByteLevelBPE(
            vocabulary: gpt2Folder.appendingPathComponent("encoder.json"),
            merges: gpt2Folder.appendingPathComponent("vocab.bpe"))
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
        let files = ["tinystories/tinystories_v2_10k.txt", "tinystories/tinystories_v1_train_head.txt", "shakespeare/input.txt"]
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("Nebula tokenizer benchmark (\(cores) cores, best of \(repeats))")
        print("GPT-2 files loaded in \(format(loadSeconds, digits: 3)) s")
        print("")
        print("| file | MB | encode 1 thread MB/s | encode \(cores) threads MB/s | tokens |")
        print("|---|---:|---:|---:|---:|")
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            let megabytes = Double(text.utf8.count) / 1e6
            var tokens = 0
            let single = best { tokens = gpt2.encode(text).count }
            let parallel = best { _ = gpt2.encodeParallel(text, threads: cores) }
            print("| \(file) | \(format(megabytes)) | \(format(megabytes / single)) | \(format(megabytes / parallel)) | \(tokens) |")
        }

        let stories =
            try Corpus(contentsOf: root.appendingPathComponent(files[0])).documents
            + Corpus(contentsOf: root.appendingPathComponent(files[1]), options: CorpusOptions(separator: .blankLines)).documents
        let megabytes = Double(stories.reduce(0) { $0 + $1.utf8.count }) / 1e6
        var vocabulary = 0
        let trainer = BPETrainer(vocabularySize: 4096)
        let seconds = best { vocabulary = (try? trainer.train(documents: stories))?.vocabularySize ?? 0 }
        print("")
        print("| training | corpus MB | vocabulary | seconds |")
        print("|---|---:|---:|---:|")
        print("| byte-level BPE, both TinyStories files | \(format(megabytes)) | \(vocabulary) | \(format(seconds, digits: 3)) |")

        // Token cache: stream a corpus, encode it on all cores, write the binary file, map it back.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let corpus = root.appendingPathComponent(files[0])
        var cacheTokens = 0
        let cacheSeconds = best {
            let cache = try? TokenCache.build(corpus: corpus, tokenizer: gpt2, cacheURL: scratch.appendingPathComponent("c.tokens"))
            cacheTokens = cache?.tokens.count ?? 0
        }
        let corpusMegabytes = Double(try FileManager.default.attributesOfItem(atPath: corpus.path)[.size] as! Int) / 1e6
        print("")
        print("| token cache build (GPT-2, \(cores) threads) | corpus MB | tokens | seconds | MB/s |")
        print("|---|---:|---:|---:|---:|")
        print(
            "| \(files[0]) | \(format(corpusMegabytes)) | \(cacheTokens) | \(format(cacheSeconds, digits: 3)) | \(format(corpusMegabytes / cacheSeconds)) |"
        )
    }

    private func best(_ body: () -> Void) -> Double {
        body()  // warm-up
        var fastest = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return fastest
    }

    private func format(_ value: Double, digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
}
