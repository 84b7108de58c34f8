import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Which decoder turns the loop's latents into text.
public enum PassageDecoder: String, Codable, Sendable, CaseIterable {
    /// The autoencoder's autoregressive decoder, fused with the frozen LM: token by token, the most fluent.
    case autoregressive
    /// The autoencoder's parallel decoder: one forward pass, trained on encoded passages only.
    case parallel
    /// The bundle's one-pass decoder (``OnePassDecoder``): one forward pass, trained on the loop's own latents to
    /// write what the autoregressive decoder writes from them.
    case onePass = "one-pass"
}

/// What a one-pass decoder folder records in its `config.json`.
public struct OnePassDecoderConfig: Codable, Equatable, Sendable {
    /// Bidirectional transformer layers (width and heads are the autoencoder's parallel decoder's).
    public var layers: Int
    /// The loops whose latents it learnt to read, by step count (each at the bundle's noise for that count).
    public var loopSteps: [Int]
    /// The LM prior λ of the fused autoregressive decode it learnt to imitate.
    public var teacherLanguageModelPrior: Float
    /// The autoencoder folder, relative to this folder (or absolute).
    public var autoencoder = "../autoencoder"

    public init(layers: Int, loopSteps: [Int], teacherLanguageModelPrior: Float) {
        (self.layers, self.loopSteps, self.teacherLanguageModelPrior) = (layers, loopSteps, teacherLanguageModelPrior)
    }

    enum CodingKeys: String, CodingKey {
        case layers, loopSteps = "loop_steps", teacherLanguageModelPrior = "teacher_lm_prior", autoencoder
    }
}

/// A decoder that writes a generated latent's passage in one forward pass, as fluently as the autoregressive
/// decoder writes it token by token: a ``ParallelDecoder`` of the autoencoder's shape, started from the
/// autoencoder's own parallel decoder and trained by sequence-level distillation (Kim & Rush 2016) on pairs of a
/// loop's latent and the fused autoregressive decoder's passage of it (``OnePassDistillationTask``).
///
/// The autoencoder's parallel decoder cannot be trained in place: its states are what the autoregressive decoder
/// reads. And trained on encoded passages only, it writes word salad from the denoiser's latents, which lie off the
/// encoder's set; the one-pass decoder learns the loop's latents, and from one target per latent (the teacher's
/// greedy passage) rather than the many passages an encoded latent could have come from.
public final class OnePassDecoder {
    public let config: OnePassDecoderConfig
    public let network: ParallelDecoder

    /// A decoder of `config.layers` layers shaped like `autoencoder`'s parallel decoder, with its weights (the
    /// first layers' where it has more; those beyond start fresh).
    public init(_ config: OnePassDecoderConfig, autoencoder: LatentAutoencoder, generator: inout SeededGenerator) {
        self.config = config
        let ae = autoencoder.config
        network = ParallelDecoder(
            latentWidth: ae.latentWidth, width: ae.width, heads: ae.heads, layers: config.layers, length: ae.maxLength,
            latents: ae.latents, stateWidth: autoencoder.languageModel.config.width, generator: &generator)
        let source = Dictionary(uniqueKeysWithValues: autoencoder.parallel.namedParameters())
        for (name, weight) in network.namedParameters() {
            if let start = source[name], start.shape == weight.shape { weight.assign(start.data) }
        }
        network.stateHead.freeze()  // only the tokens are distilled
    }

    /// Reads a one-pass decoder folder for `autoencoder` (the one its config names).
    public static func load(from directory: URL, autoencoder: LatentAutoencoder) throws -> OnePassDecoder {
        let config = try ModelFolder.readConfig(OnePassDecoderConfig.self, in: directory)
        guard config.layers >= 1 && config.layers <= 64 else {
            throw ModelFolderError(
                directory.appendingPathComponent(ModelFolder.config), "layers must be in [1, 64], got \(config.layers)")
        }
        var rng = SeededGenerator.forLoading
        let decoder = OnePassDecoder(config, autoencoder: autoencoder, generator: &rng)
        try ModelFolder.loadWeights(decoder.network, from: directory)
        decoder.network.eval()
        return decoder
    }

    /// Writes `config.json` and `model.safetensors`.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ModelFolder.writeConfig(config, in: directory)
        try network.save(safetensors: directory.appendingPathComponent(ModelFolder.weights))
    }
}

/// Pairs of a loop's latent and the passage a decoder wrote from it: what a ``OnePassDecoder`` is trained on.
public struct DecodedLatents {
    /// `[N, K, d]`
    public let latents: Tensor
    /// `[N, L]`: each passage's tokens, the end of text after the last (where it ends before L), -1 beyond.
    public let targets: [Int32]

    public init(latents: Tensor, targets: [Int32]) {
        precondition(targets.count % max(1, latents.shape[0]) == 0, "DecodedLatents: one row of targets per latent")
        (self.latents, self.targets) = (latents, targets)
    }

    public var count: Int { latents.shape[0] }
    /// L: target positions per passage.
    public var length: Int { count == 0 ? 0 : targets.count / count }

    /// `count` latents of `system`'s loop as `config` runs it, and the passages `config`'s decoder writes from them.
    public static func generate(
        _ system: LatentDiffusion, _ config: GenerationConfig, count: Int, generator: inout SeededGenerator
    ) -> DecodedLatents {
        let z = system.sample(count: count, config, generator: &generator)  // [N, K, d]
        let passages = system.decode(z, config, generator: &generator)
        let ae = system.autoencoder
        let (l, eot) = (ae.config.maxLength, Int32(ae.endOfText))
        var tokens = [Int32](repeating: eot, count: count * l)
        var mask = [Float](repeating: 0, count: count * l)
        for (b, passage) in passages.enumerated() {
            for (t, token) in passage.prefix(l).enumerated() { (tokens[b * l + t], mask[b * l + t]) = (Int32(token), 1) }
        }
        return DecodedLatents(
            latents: z, targets: LatentAutoencoder.parallelTargets(tokens: tokens, mask: mask, batch: count, length: l, endOfText: eot))
    }

    /// Rows `rows` of the pairs.
    public func rows(_ rows: [Int]) -> DecodedLatents {
        let l = length
        return DecodedLatents(latents: latents.rows(rows), targets: rows.flatMap { targets[($0 * l)..<(($0 + 1) * l)] })
    }

    /// All the pairs of `parts`, in order.
    public static func concatenate(_ parts: [DecodedLatents]) -> DecodedLatents {
        DecodedLatents(latents: Tensor.concatenate(parts.map(\.latents), axis: 0), targets: parts.flatMap(\.targets))
    }

    /// The pairs as safetensors entries (`latents` F32, `targets` I32), with `metadata`.
    public func write(to url: URL, metadata: [String: String]) throws {
        try writeSafeTensors(
            [
                SafeTensorsEntry(name: "latents", shape: latents.shape, floats: latents.data),
                SafeTensorsEntry(name: "targets", shape: [count, length], integers: targets.map(Int.init), dtype: .i32)
            ], metadata: metadata, to: url)
    }

    /// Reads pairs `write(to:metadata:)` wrote; throws on a file that holds anything else.
    public static func read(from file: SafeTensorsFile) throws -> DecodedLatents {
        let latents = try file.tensor("latents")
        let targets = try file.integers("targets").map(Int32.init)
        guard latents.rank == 3, let n = latents.shape.first, n > 0, targets.count % n == 0 else {
            throw ModelFolderError(
                URL(fileURLWithPath: file.source), "expected latents [N, K, d] and targets [N, L], got latents \(latents.shape)")
        }
        return DecodedLatents(latents: latents, targets: targets)
    }
}

/// Sequence-level distillation of the fused autoregressive decoder into a ``OnePassDecoder``: cross-entropy of
/// the one-pass decoder's tokens against the teacher's passage of the same latent, every position at once.
public final class OnePassDistillationTask: TrainingTask {
    public let decoder: OnePassDecoder
    /// The frozen LM's token embedding `[V, C]`, through which the decoder's states give logits.
    private let embedding: Tensor
    private let pairs: DecodedLatents
    private let validation: DecodedLatents?

    public init(decoder: OnePassDecoder, embedding: Tensor, pairs: DecodedLatents, validation: DecodedLatents?) {
        (self.decoder, self.embedding, self.pairs, self.validation) = (decoder, embedding, pairs, validation)
    }

    public var trainable: Module { decoder.network }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        loss(pairs.rows((0..<batchSize).map { _ in generator.nextInt(below: pairs.count) }))
    }

    /// Mean cross-entropy of the decoder's tokens against `batch`'s targets.
    func loss(_ batch: DecodedLatents) -> Tensor {
        let network = decoder.network
        return crossEntropy(network.logits(network(batch.latents), embedding: embedding), targets: batch.targets)  // [B, L, V]
    }

    /// Held-out loss, the share of target tokens the decoder's argmax gets right, and the share of passages it
    /// writes exactly as the teacher did.
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard let validation else { return [:] }
        let network = decoder.network
        var (loss, right, tokens, exact, passages) = (0.0, 0, 0, 0, 0)
        withNoGrad {
            for b in 0..<batches {
                let batch = validation.rows((0..<batchSize).map { (b * batchSize + $0) % validation.count })
                let logits = network.logits(network(batch.latents), embedding: embedding)  // [B, L, V]
                loss += Double(crossEntropy(logits, targets: batch.targets).item)
                let predicted = logits.argmax(axis: -1).data
                let l = batch.length
                for row in 0..<batchSize {
                    var same = true
                    for t in 0..<l where batch.targets[row * l + t] >= 0 {
                        tokens += 1
                        if Int32(predicted[row * l + t]) == batch.targets[row * l + t] { right += 1 } else { same = false }
                    }
                    passages += 1
                    if same { exact += 1 }
                }
            }
        }
        return [
            "val_loss": loss / Double(batches), "val_token_accuracy": Double(right) / Double(max(1, tokens)),
            "val_exact_passages": Double(exact) / Double(max(1, passages))
        ]
    }

    public func save(to directory: URL) throws { try decoder.save(to: directory) }

    public func restore(from directory: URL) throws {
        try decoder.network.load(safetensors: directory.appendingPathComponent(ModelFolder.weights))
    }
}
