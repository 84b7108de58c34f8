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
    /// Forward passes a decode takes: 1 writes every token at once; more refine a draft (mask-predict): each pass
    /// rewrites the tokens the pass before was least sure of.
    public var passes: Int
    /// Whether the decoder reads a draft of the passage (each position's token, or a mask), trained on drafts with
    /// random positions masked: what refinement needs (a first pass reads an all-masked draft).
    public var readsDrafts: Bool
    /// The loops whose latents it learnt to read, by step count (each at the bundle's noise for that count).
    public var loopSteps: [Int]
    /// The LM prior λ of the fused autoregressive decode it learnt to imitate.
    public var teacherLanguageModelPrior: Float
    /// The autoencoder folder, relative to this folder (or absolute).
    public var autoencoder = "../autoencoder"

    /// `readsDrafts` defaults to whether `passes` > 1.
    public init(layers: Int, passes: Int = 1, readsDrafts: Bool? = nil, loopSteps: [Int], teacherLanguageModelPrior: Float) {
        (self.layers, self.passes, self.loopSteps, self.teacherLanguageModelPrior) = (layers, passes, loopSteps, teacherLanguageModelPrior)
        self.readsDrafts = readsDrafts ?? (passes > 1)
    }

    enum CodingKeys: String, CodingKey {
        case layers, passes, readsDrafts = "reads_drafts", loopSteps = "loop_steps", teacherLanguageModelPrior = "teacher_lm_prior"
        case autoencoder
    }

    /// Reads a `config.json`; without `passes`, one; without `reads_drafts`, whether `passes` > 1.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        layers = try c.decode(Int.self, forKey: .layers)
        passes = try c.decodeIfPresent(Int.self, forKey: .passes) ?? 1
        readsDrafts = try c.decodeIfPresent(Bool.self, forKey: .readsDrafts) ?? (passes > 1)
        loopSteps = try c.decode([Int].self, forKey: .loopSteps)
        teacherLanguageModelPrior = try c.decode(Float.self, forKey: .teacherLanguageModelPrior)
        autoencoder = try c.decodeIfPresent(String.self, forKey: .autoencoder) ?? autoencoder
    }
}

/// A decoder that writes a generated latent's passage in one forward pass (or a few), as fluently as the
/// autoregressive decoder writes it token by token: a ``ParallelDecoder`` of the autoencoder's shape, started from
/// the autoencoder's own parallel decoder and trained by sequence-level distillation (Kim & Rush 2016) on pairs of a
/// loop's latent and the fused autoregressive decoder's passage of it (``OnePassDistillationTask``).
///
/// The autoencoder's parallel decoder cannot be trained in place: its states are what the autoregressive decoder
/// reads. And trained on encoded passages only, it writes word salad from the denoiser's latents, which lie off the
/// encoder's set; this decoder learns the loop's latents, and one target per latent (the teacher's greedy passage)
/// rather than the many passages an encoded latent could have come from. One that `readsDrafts` also reads a draft
/// (each position's token, or a mask) and refines it over `passes` passes as Mask-Predict does (Ghazvininejad et al.
/// 2019). Measured on the shipped bundle it is not yet fluent (docs/report/fewstep.md).
public final class OnePassDecoder: Module {
    public let config: OnePassDecoderConfig
    public let network: ParallelDecoder
    /// The draft's tokens into the decoder's width, `[V + 1, W]`: row V is the mask (nil for a decoder that reads none).
    public let draft: Embedding?

    /// A decoder of `config.layers` layers shaped like `autoencoder`'s parallel decoder, with its weights (the
    /// first layers' where it has more; those beyond, and the draft's embedding, start fresh).
    public init(_ config: OnePassDecoderConfig, autoencoder: LatentAutoencoder, generator: inout SeededGenerator) {
        self.config = config
        let ae = autoencoder.config
        network = ParallelDecoder(
            latentWidth: ae.latentWidth, width: ae.width, heads: ae.heads, layers: config.layers, length: ae.maxLength,
            latents: ae.latents, stateWidth: autoencoder.languageModel.config.width, generator: &generator)
        draft = config.readsDrafts ? Embedding(autoencoder.languageModel.config.vocabSize + 1, ae.width, generator: &generator) : nil
        super.init()
        let source = Dictionary(uniqueKeysWithValues: autoencoder.parallel.namedParameters())
        for (name, weight) in network.namedParameters() {
            if let start = source[name], start.shape == weight.shape { weight.assign(start.data) }
        }
        network.stateHead.freeze()  // only the tokens are distilled
    }

    /// The id of a masked position in a draft.
    var maskID: Int32 { Int32(draft!.weight.shape[0] - 1) }

    /// Logits `[B, L, V]` of latents `z: [B, K, d]` and, for a decoder that reads drafts, the draft `[B, L]`.
    public func logits(_ z: Tensor, draft tokens: [Int32]?, embedding: Tensor) -> Tensor {
        let inputs = draft.map { $0(tokens!, shape: [z.shape[0], network.positions.shape[0]]) }  // [B, L, W]
        return network.logits(network(z, inputs: inputs), embedding: embedding)
    }

    /// The passages (token ids, without the end of text) of latents `z: [B, K, d]`: one greedy pass, or `passes`
    /// (default: the config's) of mask-predict. The first pass fills an all-masked draft and sets each passage's length
    /// (its first end of text); each later one re-masks the passage's positions the last was least sure of, fewer each
    /// time, and predicts them again, the length held (the end of text is not a candidate). With `languageModelPrior`
    /// λ > 0 every later pass also adds λ × the frozen LM's log-probabilities of each position given the draft before
    /// it (one parallel pass of the LM over the last draft: shallow fusion, as the autoregressive decoder's, without
    /// the token-by-token loop). A single pass may sample (`options`); refinement is greedy.
    public func decode(
        _ z: Tensor, autoencoder: LatentAutoencoder, passes: Int? = nil, languageModelPrior: Float = 0,
        options: SamplingOptions = SamplingOptions(temperature: 0), generator: inout SeededGenerator
    ) -> [[Int]] {
        guard draft != nil else { return autoencoder.decodeInOnePass(z, by: network, options: options, generator: &generator) }
        let passes = max(1, passes ?? config.passes)
        let lm = autoencoder.languageModel
        let (batch, l, v) = (z.shape[0], autoencoder.config.maxLength, lm.config.vocabSize)
        let (mask, padding, endOfText) = (maskID, autoencoder.padding, Int32(autoencoder.endOfText))
        var tokens = [Int32](repeating: mask, count: batch * l)  // the draft the decoder reads
        var written = [Int32](repeating: endOfText, count: batch * l)  // the last prediction at every position
        var confidence = [Float](repeating: 0, count: batch * l)
        var ends = [Int](repeating: l, count: batch)
        for pass in 0..<passes {
            let logits = withNoGrad { () -> [Float] in
                var logits = self.logits(z, draft: tokens, embedding: lm.wte.weight)  // [B, L, V]
                guard pass > 0, languageModelPrior > 0 else { return logits.data }
                // The LM reads the last draft shifted right by one, so position t sees the tokens before it.
                let input = (0..<batch).flatMap { b in [endOfText] + written[(b * l)..<(b * l + l - 1)] }
                logits = logits.logSoftmax() + lm(input, batch: batch, length: l).logSoftmax() * languageModelPrior  // [B, L, V]
                return logits.data
            }
            tokens.withUnsafeMutableBufferPointer { tokens in
                written.withUnsafeMutableBufferPointer { written in
                    confidence.withUnsafeMutableBufferPointer { confidence in
                        ends.withUnsafeMutableBufferPointer { ends in
                            let (tokens, written, confidence, ends) = (tokens, written, confidence, ends)
                            Parallel.forEach(batch) { b in
                                for t in 0..<l where tokens[b * l + t] == mask {
                                    let start = (b * l + t) * v
                                    let excluded = pass > 0 ? Int(endOfText) : -1  // the length is held
                                    var best = excluded == 0 ? 1 : 0
                                    for i in 0..<v where i != excluded && logits[start + i] > logits[start + best] { best = i }
                                    var total: Float = 0
                                    for i in 0..<v where i != excluded { total += Foundation.exp(logits[start + i] - logits[start + best]) }
                                    (tokens[b * l + t], written[b * l + t], confidence[b * l + t]) = (Int32(best), Int32(best), 1 / total)
                                }
                                if pass == 0 {
                                    ends[b] = (0..<l).first { tokens[b * l + $0] == endOfText } ?? l
                                    for t in ends[b]..<l {
                                        (tokens[b * l + t], written[b * l + t]) = (t == ends[b] ? endOfText : padding, endOfText)
                                    }
                                }
                                guard pass < passes - 1 else { return }
                                let again = ends[b] * (passes - 1 - pass) / passes
                                let doubtful = (0..<ends[b]).sorted { confidence[b * l + $0] < confidence[b * l + $1] }.prefix(again)
                                for t in doubtful { tokens[b * l + t] = mask }
                            }
                        }
                    }
                }
            }
        }
        return (0..<batch).map { b in (0..<ends[b]).map { Int(written[b * l + $0]) } }
    }

    /// Reads a one-pass decoder folder for `autoencoder` (the one its config names).
    public static func load(from directory: URL, autoencoder: LatentAutoencoder) throws -> OnePassDecoder {
        let config = try ModelFolder.readConfig(OnePassDecoderConfig.self, in: directory)
        guard (1...64).contains(config.layers), (1...64).contains(config.passes) else {
            throw ModelFolderError(
                directory.appendingPathComponent(ModelFolder.config),
                "layers and passes must be in [1, 64], got \(config.layers) and \(config.passes)")
        }
        var rng = SeededGenerator.forLoading
        let decoder = OnePassDecoder(config, autoencoder: autoencoder, generator: &rng)
        try ModelFolder.loadWeights(decoder, from: directory)
        decoder.eval()
        return decoder
    }

    /// Writes `config.json` and `model.safetensors`.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ModelFolder.writeConfig(config, in: directory)
        try save(safetensors: directory.appendingPathComponent(ModelFolder.weights))
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
            for (t, token) in passage.enumerated() { (tokens[b * l + t], mask[b * l + t]) = (Int32(token), 1) }
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
/// the decoder's tokens against the teacher's passage of the same latent, every position at once. A decoder that reads
/// drafts sees each passage with a random share of its positions masked (uniform in (0, 1], the rest shown, padding
/// beyond the end) and learns the masked ones, as a conditional masked LM does.
public final class OnePassDistillationTask: TrainingTask {
    public let decoder: OnePassDecoder
    /// The frozen LM's token embedding `[V, C]`, through which the decoder's states give logits.
    private let embedding: Tensor
    private let autoencoder: LatentAutoencoder
    private let pairs: DecodedLatents
    private let validation: DecodedLatents?

    public init(decoder: OnePassDecoder, autoencoder: LatentAutoencoder, pairs: DecodedLatents, validation: DecodedLatents?) {
        (self.decoder, self.autoencoder, self.pairs, self.validation) = (decoder, autoencoder, pairs, validation)
        embedding = autoencoder.languageModel.wte.weight
    }

    public var trainable: Module { decoder }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let batch = pairs.rows((0..<batchSize).map { _ in generator.nextInt(below: pairs.count) })
        guard decoder.draft != nil else {
            return crossEntropy(decoder.logits(batch.latents, draft: nil, embedding: embedding), targets: batch.targets)
        }
        let (draft, targets) = maskedDraft(batch.targets, generator: &generator)
        return crossEntropy(decoder.logits(batch.latents, draft: draft, embedding: embedding), targets: targets)  // [B, L, V]
    }

    /// A draft of `targets` (`[B, L]`) with each row's positions masked at a rate drawn uniformly from (0, 1] (at least
    /// one), padding shown beyond the end; and the targets of the masked positions only (-1 elsewhere).
    func maskedDraft(_ targets: [Int32], generator: inout SeededGenerator) -> (draft: [Int32], targets: [Int32]) {
        let l = pairs.length
        let (mask, padding) = (decoder.maskID, autoencoder.padding)
        var draft = targets.map { $0 < 0 ? padding : $0 }
        var masked = [Int32](repeating: -1, count: targets.count)
        for row in 0..<(targets.count / l) {
            let rate = 1 - generator.nextUniform()  // (0, 1]
            var any = false
            for t in 0..<l where generator.nextUniform() < rate {
                (draft[row * l + t], masked[row * l + t], any) = (mask, targets[row * l + t], true)
            }
            if !any {
                let t = generator.nextInt(below: l)
                (draft[row * l + t], masked[row * l + t]) = (mask, targets[row * l + t])
            }
        }
        return (draft, masked)
    }

    /// Held-out loss of a first pass (everything masked), and of the whole decode (`passes` passes): the share of
    /// target tokens it writes where the teacher did, and the share of passages it writes exactly as the teacher did.
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard let validation else { return [:] }
        var (loss, right, tokens, exact, passages) = (0.0, 0, 0, 0, 0)
        var greedy = SeededGenerator(seed: 0)
        for b in 0..<batches {
            let batch = validation.rows((0..<batchSize).map { (b * batchSize + $0) % validation.count })
            let l = batch.length
            let allMasked = decoder.draft == nil ? nil : [Int32](repeating: decoder.maskID, count: batch.targets.count)
            loss += Double(
                withNoGrad {
                    crossEntropy(decoder.logits(batch.latents, draft: allMasked, embedding: embedding), targets: batch.targets).item
                })
            let written = decoder.decode(batch.latents, autoencoder: autoencoder, generator: &greedy)
            for (row, passage) in written.enumerated() {
                let eot = Int32(autoencoder.endOfText)
                let predicted = passage.map(Int32.init) + [eot] + [Int32](repeating: -1, count: l)
                var same = true
                for t in 0..<l where batch.targets[row * l + t] >= 0 {
                    tokens += 1
                    if predicted[t] == batch.targets[row * l + t] { right += 1 } else { same = false }
                }
                passages += 1
                if same { exact += 1 }
            }
        }
        return [
            "val_loss": loss / Double(batches), "val_token_accuracy": Double(right) / Double(max(1, tokens)),
            "val_exact_passages": Double(exact) / Double(max(1, passages))
        ]
    }

    public func save(to directory: URL) throws { try decoder.save(to: directory) }

    public func restore(from directory: URL) throws {
        try decoder.load(safetensors: directory.appendingPathComponent(ModelFolder.weights))
    }
}
