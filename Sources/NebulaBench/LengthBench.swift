import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// Time against output length for the bundle's two ways to write: its language model token by token (KV
/// cache), and the latent diffusion loop, whose passage costs the same whatever its length up to the
/// latent's capacity (longer outputs chain passages, each conditioned on the one before).
struct LengthBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lengths",
        abstract: "Seconds to write N tokens: autoregressive sampling against latent diffusion passages (batch 1)."
    )

    @Option(help: "A model bundle folder (holding lm/ and diffusion/).") var model = "models/tinystories"
    @Option(parsing: .upToNextOption, help: "Output lengths in tokens.") var lengths: [Int] = [16, 32, 64, 128, 192, 256]
    @Option(help: "Denoising steps per passage.") var steps = 50
    @Option(help: "Timed repeats per point (after one warm-up).") var repeats = 2
    @Option(help: "Also write the chart here (SVG).") var plot: String?

    func run() throws {
        let folders = try BundleFolders(resolving: URL(fileURLWithPath: model))
        let system = try LatentDiffusion.load(from: folders.diffusion)
        let config = try system.configuration(for: GenerationRequest(steps: steps))  // the bundle's defaults
        let lm = try GPT.load(from: folders.languageModel)
        let eot = try loadTokenizer(directory: folders.languageModel).endOfTextID ?? 0
        let capacity = system.autoencoder.config.maxLength
        let decoders = system.decoders
        func timed(_ body: () -> Void) -> Double {
            body()
            let start = Date()
            for _ in 0..<repeats { body() }
            return Date().timeIntervalSince(start) / Double(repeats)
        }
        var series: [String: [(Double, Double)]] = [:]
        for length in lengths {
            var generator = SeededGenerator(seed: 0)
            let autoregressive = timed {
                _ = lm.generate(prompt: [eot], maxTokens: length, options: SamplingOptions(temperature: 0), generator: &generator)
            }
            series["language model, token by token", default: []].append((Double(length), autoregressive))
            var line = ["\"tokens\":\(length)", "\"autoregressive_s\":\(autoregressive)"]
            let passages = (length + capacity - 1) / capacity
            for decoder in decoders {
                let seconds = timed {
                    var previous: Tensor? = nil
                    for _ in 0..<passages {
                        let z = system.sample(count: 1, config, condition: previous, generator: &generator)
                        _ = system.decode(z, config, decoder: decoder, generator: &generator)
                        previous = z
                    }
                }
                series["diffusion, \(steps) steps + \(decoder.rawValue) decoder", default: []].append((Double(length), seconds))
                line.append("\"diffusion_\(decoder.rawValue)_s\":\(seconds)")
            }
            print("{" + (line + ["\"passages\":\(passages)"]).joined(separator: ",") + "}")
        }
        if let plot {
            var chart = LinePlot(
                title: "Time to write N tokens (batch 1, \(Parallel.workerCount) threads)", xLabel: "tokens", yLabel: "seconds")
            for name in series.keys.sorted() { chart.add(name, points: series[name]!) }
            try DurableFile.write(Data(chart.svg().utf8), to: URL(fileURLWithPath: plot))
        }
    }
}
