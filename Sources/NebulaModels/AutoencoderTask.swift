import Foundation
import NebulaNN
import NebulaTensor
import NebulaText

extension LatentAutoencoder {
    /// Loads an autoencoder folder (`config.json`, `model.safetensors`) and the language model it names.
    public static func load(from directory: URL) throws -> LatentAutoencoder {
        let config = try ModelFolder.readConfig(AutoencoderConfig.self, in: directory)
        let lmURL = URL(fileURLWithPath: config.languageModel, relativeTo: directory).standardizedFileURL
        let gpt = try GPT.load(from: lmURL)
        let configURL = directory.appendingPathComponent(ModelFolder.config)
        guard config.latents > 0, config.latentWidth > 0, config.width > 0, config.heads > 0, config.width % config.heads == 0 else {
            throw ModelFolderError(configURL, "invalid sizes: latents, latent_width, width and heads must be positive and width divisible by heads")
        }
        guard config.maxLength + 1 <= gpt.config.contextLength else {
            throw ModelFolderError(configURL, "max_length \(config.maxLength) + 1 exceeds the language model's context length \(gpt.config.contextLength)")
        }
        var rng = SeededGenerator(seed: 0)
        let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
        try ModelFolder.loadWeights(ae, from: directory)
        return ae
    }

    /// Writes `config.json` and `model.safetensors` (the autoencoder's own weights; the LM stays in its folder).
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32) throws {
        try ModelFolder.write(config: config, weights: self, to: directory, dtype: dtype)
    }

    /// Latents of passages given as token lists (cut to `maxLength`), in batches.
    public func encode(_ passages: [[Int32]], padID: Int32, batchSize: Int = 64) -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: passages.count, by: batchSize) {
            let chunk = passages[start..<min(start + batchSize, passages.count)].map {
                Passage(tokens: Array($0.prefix(config.maxLength)), document: 0, index: 0)
            }
            let batch = PassageBatch(chunk, length: config.maxLength, padID: padID)
            parts.append(withNoGrad { encode(tokens: batch.tokens, mask: batch.mask, batch: chunk.count, length: config.maxLength) })
        }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0)
    }
}

/// Stage 2's training task: reconstruct passages through the latent bottleneck, noise added to latents.
public final class AutoencoderTask: TrainingTask {
    public let autoencoder: LatentAutoencoder
    private let train: [Passage]
    private let validation: [Passage]
    private let padID: Int32
    private let endOfText: Int32

    public init(autoencoder: LatentAutoencoder, train: [Passage], validation: [Passage], padID: Int32, endOfText: Int32) {
        precondition(!train.isEmpty, "AutoencoderTask: no training passages")
        self.autoencoder = autoencoder
        self.train = train
        self.validation = validation
        self.padID = padID
        self.endOfText = endOfText
    }

    public var trainable: Module { autoencoder }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let chosen = (0..<batchSize).map { _ in train[generator.nextInt(below: train.count)] }
        let batch = PassageBatch(chosen, length: autoencoder.config.maxLength, padID: padID)
        let encoded = autoencoder.encode(tokens: batch.tokens, mask: batch.mask, batch: batchSize, length: batch.length)
        var z = encoded
        if autoencoder.config.latentNoise > 0 {
            z = z + Tensor.randn(z.shape, std: autoencoder.config.latentNoise, generator: &generator)
        }
        let reconstruction = withUnsafeMutablePointer(to: &generator) { pointer in
            autoencoder.reconstructionLoss(z, tokens: batch.tokens, mask: batch.mask, batch: batchSize,
                                           length: batch.length, endOfText: endOfText, dropoutGenerator: pointer)
        }
        guard autoencoder.config.centering > 0 else { return reconstruction }
        return reconstruction + encoded.mean(axis: 0).squared().mean() * autoencoder.config.centering

    }

    /// Reconstruction loss (no latent noise) on the first `batches × batchSize` validation passages, and the
    /// same loss with each passage given its neighbour's latent (`val_loss_shuffled`): the gap between the
    /// two is what the latent carries about its own passage; a gap near 0 means the latent has collapsed.
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard !validation.isEmpty else { return [:] }
        var own = 0.0, shuffled = 0.0, count = 0
        for b in 0..<batches {
            let start = b * batchSize
            guard start < validation.count else { break }
            let chosen = Array(validation[start..<min(start + batchSize, validation.count)])
            guard chosen.count > 1 else { break }
            let batch = PassageBatch(chosen, length: autoencoder.config.maxLength, padID: padID)
            let z = autoencoder.encode(tokens: batch.tokens, mask: batch.mask, batch: chosen.count, length: batch.length) // [B, K, d]
            let neighbours = (0..<chosen.count).map { Int32(($0 + 1) % chosen.count) }
            let zShuffled = z.reshaped([chosen.count, -1]).gatherRows(neighbours).reshaped(z.shape)
            own += Double(autoencoder.reconstructionLoss(z, tokens: batch.tokens, mask: batch.mask, batch: chosen.count,
                                                         length: batch.length, endOfText: endOfText).item)
            shuffled += Double(autoencoder.reconstructionLoss(zShuffled, tokens: batch.tokens, mask: batch.mask, batch: chosen.count,
                                                              length: batch.length, endOfText: endOfText).item)
            count += 1
        }
        guard count > 0 else { return [:] }
        return ["val_loss": own / Double(count), "val_loss_shuffled": shuffled / Double(count)]
    }

    public func save(to directory: URL) throws { try autoencoder.save(to: directory) }
    public func restore(from directory: URL) throws { try ModelFolder.loadWeights(autoencoder, from: directory) }
}
