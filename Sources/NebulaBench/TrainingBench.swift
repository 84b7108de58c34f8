import ArgumentParser
import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Times GPT training steps (forward, backward, AdamW) on random tokens at the configurations of the
/// PyTorch comparison, so the two can be set side by side.
struct TrainingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpt", abstract: "GPT training-step time at the comparison configurations.")

    @Option(help: "small (4×128, T64, B12, V65) or medium (6×384, T256, B8, V65).") var config = "small"
    @Option(help: "Steps to time (after 3 warm-up steps).") var steps = 20
    @Option(help: "Precision of the linear layers' products: fp32 or bf16 (bf16 operands, fp32 accumulation).")
    var precision = MatmulPrecision.fp32
    @Flag(help: "One JSON line instead of text.") var json = false

    func run() throws { try context(precision).run(measure) }

    func measure() throws {
        let (gptConfig, batch): (GPTConfig, Int) =
            switch config {
            case "small": (GPTConfig(vocabSize: 65, contextLength: 64, layers: 4, heads: 4, width: 128), 12)
            case "medium": (GPTConfig(vocabSize: 65, contextLength: 256, layers: 6, heads: 6, width: 384), 8)
            default: throw ValidationError("unknown --config \(config): use small or medium")
            }
        var rng = SeededGenerator(seed: 0)
        let gpt = GPT(gptConfig, generator: &rng)
        let optimizer = AdamW(learningRate: 1e-3, beta2: 0.99, weightDecay: 0.1)
        let t = gptConfig.contextLength
        let tokens = (0..<(batch * (t + 1))).map { _ in Int32(rng.nextInt(below: gptConfig.vocabSize)) }
        var x: [Int32] = [], y: [Int32] = []
        for b in 0..<batch {
            x += tokens[(b * (t + 1))..<(b * (t + 1) + t)]
            y += tokens[(b * (t + 1) + 1)...(b * (t + 1) + t)]
        }
        var forward = 0.0, backward = 0.0, update = 0.0
        var bytesBefore = 0
        for step in 0..<(steps + 3) {
            if step == 3 { bytesBefore = Tensor.storageBytesCreated }
            let t0 = Date()
            let loss = gpt.loss(x, targets: y, batch: batch, length: t)
            let t1 = Date()
            loss.backward()
            let t2 = Date()
            clipGradientNorm(gpt.parameters(), maxNorm: 1)
            optimizer.step(gpt)
            let t3 = Date()
            if step >= 3 {
                forward += t1.timeIntervalSince(t0); backward += t2.timeIntervalSince(t1); update += t3.timeIntervalSince(t2)
            }
        }
        let perStep = (forward + backward + update) / Double(steps)
        let tokensPerSecond = Double(batch * t) / perStep
        let peak = peakResidentMegabytes()
        let megabytesPerStep = Double(Tensor.storageBytesCreated - bytesBefore) / Double(steps) / 1_048_576
        if json {
            print(
                "{\"impl\":\"nebula\",\"gemm_backend\":\"\(GEMMBackend.current.rawValue)\",\"config\":\"\(config)\",\"precision\":\"\(precision.rawValue)\",\"ms_per_step\":\(perStep * 1e3),\"tokens_per_s\":\(tokensPerSecond),\"peak_rss_mb\":\(peak),\"tensor_mb_per_step\":\(megabytesPerStep),\"params\":\(gpt.parameterCount)}"
            )
        } else {
            print(
                "GPT \(config): \(gpt.parameterCount) parameters, batch \(batch) × \(t) tokens, GEMM backend \(GEMMBackend.current.rawValue), \(precision.rawValue) products"
            )
            print(
                String(
                    format:
                        "%.2f ms/step (forward %.2f, backward %.2f, clip+AdamW %.2f), %.0f tokens/s, peak RSS %.0f MB, tensors created %.1f MB/step",
                    perStep * 1e3, forward / Double(steps) * 1e3, backward / Double(steps) * 1e3, update / Double(steps) * 1e3,
                    tokensPerSecond, peak, megabytesPerStep))
        }
    }
}

/// Peak resident set size of this process in MB (Linux reports ru_maxrss in kB, macOS in bytes).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
        getrusage(RUSAGE_SELF, &usage)
    #endif
    #if os(macOS)
        return Double(usage.ru_maxrss) / 1_048_576
    #else
        return Double(usage.ru_maxrss) / 1024
    #endif
}

extension MatmulPrecision: ExpressibleByArgument {}

/// The context of a benchmark at `precision`; bf16 where it cannot run natively is an error, not a fallback
/// (a benchmark must measure what it names).
func context(_ precision: MatmulPrecision) throws -> ExecutionContext {
    if precision == .bf16, let reason = MatmulPrecision.bf16Unavailable { throw ValidationError("--precision bf16: \(reason)") }
    var context = ExecutionContext.current
    context.precision = precision
    return context
}
