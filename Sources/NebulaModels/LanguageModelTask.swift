import Foundation
import NebulaNN
import NebulaTensor

/// Next-token prediction on a token stream: the training task of stage 1.
public final class LanguageModelTask: TrainingTask {
    public let model: GPT
    private let train: [Int32]
    private let validation: [Int32]

    public init(model: GPT, train: [Int32], validation: [Int32]) {
        let needed = model.config.contextLength + 1
        precondition(train.count > needed, "LanguageModelTask: \(train.count) training tokens, need more than \(needed)")
        self.model = model
        self.train = train
        self.validation = validation.count > needed ? validation : []
    }

    public var trainable: Module { model }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize * model.config.contextLength }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let length = model.config.contextLength
        let (x, y) = sampleWindows(train, batch: batchSize, length: length, generator: &generator)
        return model.loss(x, targets: y, batch: batchSize, length: length)
    }

    /// Mean loss over `batches` validation batches drawn with a fixed seed (comparable across steps and
    /// independent of the training stream).
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard !validation.isEmpty else { return [:] }
        var generator = SeededGenerator(seed: 0x5EED)
        let length = model.config.contextLength
        var total: Float = 0
        for _ in 0..<batches {
            let (x, y) = sampleWindows(validation, batch: batchSize, length: length, generator: &generator)
            total += model.loss(x, targets: y, batch: batchSize, length: length).item
        }
        return ["val_loss": Double(total / Float(batches))]
    }

    public func save(to directory: URL) throws { try model.save(to: directory) }
    public func restore(from directory: URL) throws { try ModelFolder.loadWeights(model, from: directory) }
}

/// `batch` random windows of `length + 1` tokens: inputs and the targets shifted by one, each `[B·T]`.
public func sampleWindows(_ tokens: [Int32], batch: Int, length: Int, generator: inout SeededGenerator) -> (x: [Int32], y: [Int32]) {
    var x: [Int32] = [], y: [Int32] = []
    x.reserveCapacity(batch * length)
    y.reserveCapacity(batch * length)
    for _ in 0..<batch {
        let start = generator.nextInt(below: tokens.count - length)
        x += tokens[start..<(start + length)]
        y += tokens[(start + 1)...(start + length)]
    }
    return (x, y)
}
