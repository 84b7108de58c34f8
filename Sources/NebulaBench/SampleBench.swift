import ArgumentParser
import Foundation
import NebulaModels
import NebulaTensor
import NebulaText

/// Times KV-cached sampling of a language model at several batch sizes: every row continues the same
/// prompt greedily, so the tokens can be checked against another implementation (`bench/compare_pytorch.sh`).
struct SampleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "KV-cached greedy sampling of a language model: tokens/s at each batch size."
    )

    @Option(help: "A language model folder (Nebula or Hugging Face).") var model = "models/tinystories/lm"
    @Option(help: "The prompt.") var prompt = "Once upon a time"
    @Option(help: "New tokens per row (the prompt and these must fit in the context).") var tokens = 120
    @Option(parsing: .upToNextOption, help: "Batch sizes (rows decoded together).") var batches: [Int] = [1, 16]
    @Option(help: "Timed repeats per batch size (after one warm-up).") var repeats = 3
    @Flag(help: "One JSON line per batch size instead of text.") var json = false

    func validate() throws {
        guard tokens >= 1, repeats >= 1, !batches.isEmpty, batches.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--tokens, --repeats and every --batches value must be positive")
        }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: model)
        let gpt = try GPT.load(from: folder)
        let promptIDs = try loadTokenizer(directory: folder).encode(prompt)
        guard !promptIDs.isEmpty, promptIDs.count + tokens <= gpt.config.contextLength else {
            throw ValidationError(
                "the prompt (\(promptIDs.count) tokens) and --tokens \(tokens) must fit in the context of \(gpt.config.contextLength)")
        }
        if !json {
            print(
                "\(model): \(gpt.parameterCount) parameters, prompt \(promptIDs.count) tokens, \(tokens) new tokens, \(Parallel.workerCount) threads, GEMM backend \(GEMMBackend.current.rawValue)"
            )
        }
        for batch in batches {
            var seconds = 0.0
            var output: [Int] = []
            var bytesBefore = 0
            for repeat_ in 0...repeats {
                if repeat_ == 1 { bytesBefore = Tensor.storageBytesCreated }
                let start = Date()
                var generator = SeededGenerator(seed: 0)
                output =
                    gpt.generate(
                        prompts: Array(repeating: promptIDs, count: batch), maxTokens: tokens,
                        options: SamplingOptions(temperature: 0), generator: &generator)[0]
                if repeat_ > 0 { seconds += Date().timeIntervalSince(start) }  // the first run warms up
            }
            seconds /= Double(repeats)
            let tokensPerSecond = Double(batch * tokens) / seconds
            let kilobytesPerStep = Double(Tensor.storageBytesCreated - bytesBefore) / Double(repeats * tokens) / 1024
            if json {
                print(
                    "{\"impl\":\"nebula\",\"batch\":\(batch),\"threads\":\(Parallel.workerCount),\"new_tokens\":\(tokens),"
                        + "\"seconds\":\(seconds),\"tokens_per_s\":\(tokensPerSecond),\"tensor_kb_per_step\":\(kilobytesPerStep),\"prompt_ids\":\(promptIDs),\"tokens\":\(output)}"
                )
            } else {
                print(
                    String(
                        format: "batch %3d: %.1f ms per run, %.2f ms per decoding step, %.0f tokens/s, tensors created %.0f kB/step",
                        batch, seconds * 1e3, seconds / Double(tokens) * 1e3, tokensPerSecond, kilobytesPerStep))
            }
        }
    }
}
