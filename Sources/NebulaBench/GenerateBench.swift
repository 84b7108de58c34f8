import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

extension PassageDecoder: ExpressibleByArgument {}

/// Generation throughput as a server measures it: passages/s and tokens/s at each batch size, for the language
/// model alone (KV-cached, every row writing a whole passage's tokens) and for the diffusion loop at each step
/// count with each decoder — the bundle's denoiser, or a distilled one where `--distilled` has it for that count.
struct GenerateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Passages/s and tokens/s at each batch size: the LM alone against the loop (each step count × decoder)."
    )

    @Option(help: "A model bundle folder (holding diffusion/) or a diffusion folder.") var model = "models/tinystories"
    @Option(parsing: .upToNextOption, help: "Denoising steps per passage.") var steps: [Int] = [2, 4, 8, 50]
    @Option(help: "Distilled denoisers (a folder of N-steps/ subfolders, `nebula train distill --out`): used at their step counts.")
    var distilled: String?
    @Option(parsing: .upToNextOption, help: "Batch sizes (passages written together).") var batches: [Int] = [1, 16, 64]
    @Option(
        parsing: .upToNextOption,
        help: "Decoders of the loop's latents: autoregressive, parallel, one-pass (default: every one the bundle has).")
    var decoders: [PassageDecoder] = []
    @Option(help: "Timed repeats per point (after one warm-up).") var repeats = 3
    @Option(help: "Precision of the linear layers' products: fp32 or bf16.") var precision = MatmulPrecision.fp32
    @Option(help: "Write seconds per passage against steps here (SVG): the smallest and the largest batch, each decoder and the LM alone.")
    var plot: String?
    @Flag(help: "One JSON line per measurement instead of text.") var json = false

    func validate() throws {
        guard repeats >= 1, !steps.isEmpty, steps.allSatisfy({ $0 >= 1 }), !batches.isEmpty, batches.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--steps, --repeats and every --batches value must be positive")
        }
    }

    func run() throws { try context(precision).run(measure) }

    /// One measurement: what wrote, at which batch, and the mean seconds of a batch.
    struct Point {
        var writer: String, steps: Int?, decoder: String?, batch: Int, seconds: Double, tokens: Int
        var passagesPerSecond: Double { Double(batch) / seconds }
        var tokensPerSecond: Double { Double(batch * tokens) / seconds }
    }

    func measure() throws {
        let folders = try BundleFolders(resolving: URL(fileURLWithPath: model))
        let system = try LatentDiffusion.load(from: folders.diffusion)
        let lm = system.autoencoder.languageModel
        let tokens = system.autoencoder.config.maxLength  // the LM writes as many tokens as a passage holds
        let eot = system.autoencoder.endOfText
        let decoders = self.decoders.isEmpty ? system.decoders : self.decoders
        if let missing = decoders.first(where: { !system.decoders.contains($0) }) {
            throw ValidationError("--decoders: \(model) has no \(missing.rawValue) decoder")
        }
        let fewStep = try steps.compactMap { count -> (Int, LatentDiffusion)? in
            guard let distilled else { return nil }
            let folder = URL(fileURLWithPath: distilled).appendingPathComponent("\(count)-steps")
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) else { return nil }
            return (count, try LatentDiffusion.load(from: folder, autoencoder: system.autoencoder))
        }
        let writers = steps.map { count in (count, fewStep.first { $0.0 == count }?.1 ?? system) }
        if !json {
            print(
                "\(model): LM \(lm.parameterCount) parameters, denoiser \(system.denoiser.parameterCount), \(tokens)-token passages, GEMM \(GEMMBackend.current.rawValue), \(Parallel.workerCount) threads"
            )
        }
        func timed(_ body: () -> Void) -> Double {
            body()  // warm-up
            let start = Date()
            for _ in 0..<repeats { body() }
            return Date().timeIntervalSince(start) / Double(repeats)
        }
        var points: [Point] = []
        func report(_ point: Point) {
            points.append(point)
            let name = point.writer + (point.steps.map { " \($0) steps" } ?? "") + (point.decoder.map { " + \($0) decoder" } ?? "")
            if json {
                print(
                    "{\"writer\":\"\(name)\",\"batch\":\(point.batch),\"seconds\":\(point.seconds),\"passages_per_s\":\(point.passagesPerSecond),\"tokens_per_s\":\(point.tokensPerSecond)}"
                )
            } else {
                print(
                    name.padding(toLength: 50, withPad: " ", startingAt: 0)
                        + String(
                            format: "batch %3d: %8.1f ms a batch, %7.1f ms a passage, %7.1f passages/s, %8.0f tokens/s", point.batch,
                            point.seconds * 1e3, point.seconds * 1e3 / Double(point.batch), point.passagesPerSecond, point.tokensPerSecond))
            }
        }
        for batch in batches {
            var generator = SeededGenerator(seed: 0)
            let prompts = [[Int]](repeating: [eot], count: batch)
            let seconds = timed {
                _ = lm.generate(prompts: prompts, maxTokens: tokens, options: SamplingOptions(topP: 0.95), generator: &generator)
            }
            report(Point(writer: "LM alone", steps: nil, decoder: nil, batch: batch, seconds: seconds, tokens: tokens))
            for (count, writer) in writers {
                let config = try writer.configuration(for: GenerationRequest(steps: count, sampler: writer.config.distillation?.sampler))
                let name = writer.config.distillation == nil ? "loop" : "distilled loop"
                for decoder in decoders {
                    let seconds = timed {
                        let z = writer.sample(count: batch, config, generator: &generator)  // [B, K, d]
                        _ = writer.decode(z, config, decoder: decoder, generator: &generator)
                    }
                    report(Point(writer: name, steps: count, decoder: decoder.rawValue, batch: batch, seconds: seconds, tokens: tokens))
                }
            }
        }
        if let plot {
            var chart = LinePlot(
                title: "Seconds per \(tokens)-token passage (\(Parallel.workerCount) threads)", xLabel: "denoising steps",
                yLabel: "seconds per passage",
                logX: true)
            let xs = (steps.min()!, steps.max()!)
            for batch in Set([batches.min()!, batches.max()!]).sorted() {  // the smallest and the largest: a readable chart
                for decoder in decoders.map(\.rawValue) {
                    let line = points.filter { $0.batch == batch && $0.decoder == decoder }.map {
                        (Double($0.steps!), $0.seconds / Double(batch))
                    }
                    chart.add("loop + \(decoder), batch \(batch)", points: line)
                }
                if let lmPoint = points.first(where: { $0.batch == batch && $0.steps == nil }) {
                    let y = lmPoint.seconds / Double(batch)
                    chart.add("LM alone, batch \(batch)", points: [(Double(xs.0), y), (Double(xs.1), y)])
                }
            }
            try DurableFile.write(Data(chart.svg().utf8), to: URL(fileURLWithPath: plot))
        }
    }
}
