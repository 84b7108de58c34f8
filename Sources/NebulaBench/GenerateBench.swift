import ArgumentParser
import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText

/// Times the generation loop of a bundle at several batch sizes: the denoising steps, then the decode of
/// the final latents by each decoder, so batching's gain is measured where it happens.
struct GenerateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "The latent diffusion loop of a bundle: ms per denoising step and per decode, and passages/s, at each batch size."
    )

    @Option(help: "A model bundle folder (holding diffusion/) or a diffusion folder.") var model = "models/tinystories"
    @Option(help: "Denoising steps per passage.") var steps = 50
    @Option(parsing: .upToNextOption, help: "Batch sizes (passages denoised together).") var batches: [Int] = [1, 16, 64]
    @Option(help: "Timed repeats per batch size (after one warm-up).") var repeats = 3
    @Option(help: "Precision of the linear layers' products: fp32 or bf16.") var precision = MatmulPrecision.fp32
    @Flag(help: "One JSON line per batch size instead of text.") var json = false

    func validate() throws {
        guard steps >= 1, repeats >= 1, !batches.isEmpty, batches.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--steps, --repeats and every --batches value must be positive")
        }
    }

    func run() throws { try context(precision).run(measure) }

    func measure() throws {
        let folders = try BundleFolders(resolving: URL(fileURLWithPath: model))
        let system = try LatentDiffusion.load(from: folders.diffusion)
        let config = try system.configuration(for: GenerationRequest(steps: steps))  // the bundle's defaults
        let decoders: [AutoencoderConfig.Decoder] = system.autoencoder.autoregressive == nil ? [.parallel] : [.parallel, .autoregressive]
        if !json {
            print(
                "\(model): denoiser \(system.denoiser.parameterCount) parameters, \(steps) steps, GEMM backend \(GEMMBackend.current.rawValue)"
            )
        }
        for batch in batches {
            var loop = 0.0
            var decode = [Double](repeating: 0, count: decoders.count)
            for repeat_ in 0...repeats {
                var generator = SeededGenerator(seed: UInt64(repeat_))
                let start = Date()
                let z = system.sample(count: batch, config, generator: &generator)  // [B, K, d]
                let sampled = Date()
                var times: [Double] = []
                for decoder in decoders {
                    let t0 = Date()
                    _ = system.decode(z, config, decoder: decoder, generator: &generator)
                    times.append(Date().timeIntervalSince(t0))
                }
                guard repeat_ > 0 else { continue }  // warm-up
                loop += sampled.timeIntervalSince(start)
                for i in decoders.indices { decode[i] += times[i] }
            }
            loop /= Double(repeats)
            decode = decode.map { $0 / Double(repeats) }
            let perStep = loop / Double(steps) * 1e3
            if json {
                var fields = ["\"batch\":\(batch)", "\"steps\":\(steps)", "\"loop_ms\":\(loop * 1e3)", "\"ms_per_step\":\(perStep)"]
                for (decoder, seconds) in zip(decoders, decode) {
                    fields.append("\"decode_\(decoder.rawValue)_ms\":\(seconds * 1e3)")
                    fields.append("\"passages_per_s_\(decoder.rawValue)\":\(Double(batch) / (loop + seconds))")
                }
                print("{" + fields.joined(separator: ",") + "}")
            } else {
                let decodes = zip(decoders, decode).map { decoder, seconds in
                    String(
                        format: "decode %@ %.1f ms (%.1f passages/s in all)", decoder.rawValue, seconds * 1e3,
                        Double(batch) / (loop + seconds))
                }
                print(
                    String(
                        format: "batch %3d: loop %.1f ms (%.2f ms/step, %.3f ms/step/passage); ", batch, loop * 1e3, perStep,
                        perStep / Double(batch))
                        + decodes.joined(separator: "; "))
            }
        }
    }
}
