import Foundation
import NebulaNN
import NebulaTensor
import NebulaText

extension LatentAutoencoder {
    /// Loads an autoencoder folder (`config.json`, `model.safetensors`) and the language model it names.
    public static func load(from directory: URL) throws -> LatentAutoencoder {
        var config = try ModelFolder.readConfig(AutoencoderConfig.self, in: directory)
        let lmURL = ModelFolder.resolve(config.languageModel, from: directory)
        let gpt = try GPT.load(from: lmURL)
        let configURL = directory.appendingPathComponent(ModelFolder.config)
        if config.endOfText == nil {
            let tokenizer = try loadTokenizer(directory: lmURL)
            guard let id = tokenizer.endOfTextID else {
                throw ModelFolderError(configURL, "no end_of_text, and the language model's tokenizer has no end-of-text token")
            }
            (config.endOfText, config.padding) = (id, config.padding ?? tokenizer.padID ?? id)
        }
        for (key, id) in [("end_of_text", config.endOfText), ("padding", config.padding)] {
            if let id, !(0..<gpt.config.vocabSize).contains(id) {
                throw ModelFolderError(configURL, "\(key) \(id) is outside the language model's vocabulary of \(gpt.config.vocabSize)")
            }
        }
        guard config.latents > 0, config.latentWidth > 0, config.width > 0, config.heads > 0, config.width % config.heads == 0,
            config.maxLength % config.latents == 0
        else {
            throw ModelFolderError(
                configURL,
                "invalid sizes: latents, latent_width, width and heads must be positive, width divisible by heads and max_length by latents"
            )
        }
        guard config.languageModelLayer < gpt.config.layers else {
            throw ModelFolderError(
                configURL, "language_model_layer \(config.languageModelLayer) is past the language model's \(gpt.config.layers) blocks")
        }
        guard config.maxLength + 1 <= gpt.config.contextLength else {
            throw ModelFolderError(
                configURL, "max_length \(config.maxLength) + 1 exceeds the language model's context length \(gpt.config.contextLength)")
        }
        let (w, layers) = (Double(config.width), Double(config.encoderLayers + config.decoderLayers))
        try ModelFolder.checkSize(
            of: configURL, needs: max(layers * w * w, Double(config.maxLength) * w, Double(config.latentWidth) * w),
            files: [SafeTensorsFile(contentsOf: directory.appendingPathComponent(ModelFolder.weights))])
        var rng = SeededGenerator.forLoading
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        try ModelFolder.loadWeights(ae, from: directory)
        return ae
    }

    /// Writes `config.json` and `model.safetensors` (the autoencoder's own weights; the LM stays in its folder).
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32) throws {
        try ModelFolder.write(config: config, weights: self, to: directory, dtype: dtype)
    }

    /// The `latents` tensor of a file written by `nebula encode --out`, checked: shape `[N, K, d]` with this
    /// autoencoder's K and d, N ≥ 1, every value finite. Throws one line naming the file and what is wrong.
    public func latents(in file: SafeTensorsFile) throws -> Tensor {
        let (k, d) = (config.latents, config.latentWidth)
        guard let info = file.info("latents") else {
            throw SafeTensorsError(
                .missingTensor, source: file.source, "expected a tensor named \"latents\", found \(file.tensors.map(\.name).prefix(4))")
        }
        guard info.shape.count == 3, info.shape[1] == k, info.shape[2] == d else {
            throw ModelFolderError(
                URL(fileURLWithPath: file.source), "latents of shape \(info.shape) do not fit this autoencoder ([N, \(k), \(d)])")
        }
        guard info.shape[0] > 0 else { throw ModelFolderError(URL(fileURLWithPath: file.source), "no latents (N = 0)") }
        let z = try file.tensor("latents")
        if let bad = z.data.firstIndex(where: { !$0.isFinite }) {
            throw ModelFolderError(
                URL(fileURLWithPath: file.source),
                "latents[\(bad / (k * d))][\((bad / d) % k)][\(bad % d)] is \(z.data[bad]), expected a finite number")
        }
        return z
    }

    /// Latents of passages given as token lists (cut to `maxLength`), in batches.
    public func encode(_ passages: [[Int32]], batchSize: Int = 64) -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: passages.count, by: batchSize) {
            let chunk = passages[start..<min(start + batchSize, passages.count)].map {
                Passage(tokens: Array($0.prefix(config.maxLength)), document: 0, index: 0)
            }
            let batch = PassageBatch(chunk, length: config.maxLength, padID: padding)
            parts.append(withNoGrad { encode(tokens: batch.tokens, mask: batch.mask, batch: chunk.count, length: config.maxLength) })
        }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0)
    }
}

/// Stage 2's training task: reconstruct passages through the latent bottleneck, with the augmentations
/// that make the latent space smooth enough to diffuse in (latent noise of a random std, masking of the
/// encoder's input tokens, dropout of whole latent vectors) and the alignment of the parallel decoder's
/// states with the frozen LM's.
public final class AutoencoderTask: TrainingTask {
    public let autoencoder: LatentAutoencoder
    private let train: [Passage]
    private let validation: [Passage]
    private let endOfText: Int32
    private let padding: Int32

    public init(autoencoder: LatentAutoencoder, train: [Passage], validation: [Passage]) {
        precondition(!train.isEmpty, "AutoencoderTask: no training passages")
        self.autoencoder = autoencoder
        self.train = train
        self.validation = validation
        (endOfText, padding) = (Int32(autoencoder.endOfText), autoencoder.padding)
    }

    public var trainable: Module { autoencoder }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let config = autoencoder.config
        let chosen = (0..<batchSize).map { _ in train[generator.nextInt(below: train.count)] }
        let batch = PassageBatch(chosen, length: config.maxLength, padID: padding)
        let states = autoencoder.languageModelStates(tokens: batch.tokens, batch: batchSize, length: batch.length)  // [B, L, C]
        var encoderStates = states
        if config.inputMasking > 0 {
            var masked = batch.tokens
            for i in masked.indices where batch.mask[i] != 0 && generator.nextUniform() < config.inputMasking { masked[i] = endOfText }
            encoderStates = autoencoder.languageModelStates(tokens: masked, batch: batchSize, length: batch.length)
        }
        var z = autoencoder.encoder(encoderStates, mask: batch.mask)  // [B, K, d]
        let k = config.latents
        if config.latentNoise > 0 {
            let scales = (0..<batchSize).map { _ in generator.nextUniform() * config.latentNoise }
            z = z + Tensor.randn(z.shape, generator: &generator) * Tensor(shape: [batchSize, 1, 1], data: scales)
        }
        if config.latentDropout > 0 {
            let keep = (0..<(batchSize * k)).map { _ in generator.nextUniform() < config.latentDropout ? Float(0) : 1 }
            z = z * Tensor(shape: [batchSize, k, 1], data: keep)
        }
        let losses = autoencoder.losses(
            z, tokens: batch.tokens, mask: batch.mask, batch: batchSize,
            states: config.alignment > 0 ? states : nil)
        var total = losses.autoregressive.map { $0 + losses.parallel * config.parallelWeight } ?? losses.parallel
        if let alignment = losses.alignment { total = total + alignment * config.alignment }
        return total
    }

    /// Diagnostics on the first `batches × batchSize` validation passages (no augmentation):
    /// - `val_loss`: the decoding decoder's reconstruction loss; `val_loss_parallel`, `val_alignment`;
    /// - `val_loss_shuffled`: the same with each passage given its neighbour's latent — the gap to
    ///   `val_loss` is what the latent carries about its own passage (near 0: collapse);
    /// - `val_loss_latent_alone` (autoregressive): the decoder given no input tokens, only the latent;
    /// - `val_token_accuracy`: the parallel decoder's argmax accuracy over tokens and the final EOT;
    /// - `latent_between_share`: the share of latent variance that lies between passages (0: collapse).
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        autoencoder.diagnostics(of: validation, batches: batches, batchSize: batchSize)
    }

    public func save(to directory: URL) throws { try autoencoder.save(to: directory) }
    public func restore(from directory: URL) throws { try ModelFolder.loadWeights(autoencoder, from: directory) }
}

extension LatentAutoencoder {
    /// The diagnostics of `AutoencoderTask.evaluate` on any passages (no augmentation).
    public func diagnostics(of passages: [Passage], batches: Int, batchSize: Int) -> [String: Double] {
        let endOfText = Int32(endOfText)
        let ae = self, l = config.maxLength
        var sums: [String: Double] = [:], count = 0
        var latents: [Float] = []
        func add(_ key: String, _ value: Tensor?) { if let value { sums[key, default: 0] += Double(value.item) } }
        for b in 0..<batches {
            let start = b * batchSize
            guard start < passages.count else { break }
            let chosen = Array(passages[start..<min(start + batchSize, passages.count)])
            guard chosen.count > 1 else { break }
            let n = chosen.count
            let batch = PassageBatch(chosen, length: l, padID: padding)
            withNoGrad {
                let states = ae.languageModelStates(tokens: batch.tokens, batch: n, length: l)
                let z = ae.encoder(states, mask: batch.mask)  // [B, K, d]
                latents += z.data
                let own = ae.losses(z, tokens: batch.tokens, mask: batch.mask, batch: n, states: states)
                add("val_loss", own.reconstruction)
                add("val_loss_parallel", own.parallel)
                add("val_alignment", own.alignment)
                let neighbours = (0..<n).map { Int32(($0 + 1) % n) }
                let shuffled = z.reshaped([n, -1]).gatherRows(neighbours).reshaped(z.shape)
                add("val_loss_shuffled", ae.losses(shuffled, tokens: batch.tokens, mask: batch.mask, batch: n).reconstruction)
                if ae.autoregressive != nil {
                    add(
                        "val_loss_latent_alone",
                        ae.losses(
                            z, tokens: batch.tokens, mask: batch.mask, batch: n,
                            latentAlone: true
                        ).autoregressive)
                }
                let targets = LatentAutoencoder.parallelTargets(
                    tokens: batch.tokens, mask: batch.mask, batch: n, length: l, endOfText: endOfText)
                let predicted = ae.parallel.logits(ae.parallel(z), embedding: ae.languageModel.wte.weight).argmax(axis: -1).data
                let scored = targets.indices.filter { targets[$0] >= 0 }
                sums["val_token_accuracy", default: 0] +=
                    Double(scored.filter { Int32(predicted[$0]) == targets[$0] }.count) / Double(max(1, scored.count))
            }
            count += 1
        }
        guard count > 0 else { return [:] }
        var result = sums.mapValues { $0 / Double(count) }
        result["latent_between_share"] = AutoencoderTask.betweenShare(latents, rowWidth: ae.config.latents * ae.config.latentWidth)
        return result
    }

}

extension AutoencoderTask {
    /// The share of the variance of latent rows (`values` as rows of `rowWidth`) that lies between rows:
    /// mean over elements of the across-row variance, over the variance of all values.
    static func betweenShare(_ values: [Float], rowWidth: Int) -> Double {
        let rows = values.count / rowWidth
        guard rows > 1 else { return 0 }
        var between = 0.0
        for j in 0..<rowWidth {
            let column = (0..<rows).map { Double(values[$0 * rowWidth + j]) }
            let mean = column.reduce(0, +) / Double(rows)
            between += column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rows)
        }
        let all = values.map(Double.init), mean = all.reduce(0, +) / Double(all.count)
        let total = all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)
        return total > 0 ? between / Double(rowWidth) / total : 0
    }
}
