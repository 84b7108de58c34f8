import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Training a ``LatentClassifier``: a labelled passage's latent noised at a uniformly drawn time of the classifier's
/// schedule, and the cross-entropy of its label — so the classifier answers at every noise level the loop passes.
public final class ClassifierTask: TrainingTask {
    public let classifier: LatentClassifier
    private let latents: Tensor  // [N, K, d]
    private let labels: [Int32]
    private let validation: (latents: Tensor, labels: [Int32])?
    /// The noise levels the evaluation reports accuracy at (`val_accuracy_t0`, …).
    public static let evaluationTimes: [Float] = [0, 0.25, 0.5, 0.75]

    /// `latents: [N, K, d]` with one label index per row; `validation` likewise.
    public init(classifier: LatentClassifier, latents: Tensor, labels: [Int], validation: (latents: Tensor, labels: [Int])?) {
        precondition(latents.shape[0] == labels.count, "ClassifierTask: \(labels.count) labels for \(latents.shape[0]) latents")
        self.classifier = classifier
        self.latents = latents
        self.labels = labels.map(Int32.init)
        self.validation = validation.map { ($0.latents, $0.labels.map(Int32.init)) }
    }

    public var trainable: Module { classifier }
    public func items(inBatchOf batchSize: Int) -> Int { batchSize }

    private func loss(x0: Tensor, labels: [Int32], times: [Float], noise: Tensor) -> Tensor {
        let z = classifier.config.schedule.noised(x0, noise: noise, times: times)
        return crossEntropy(classifier(z, times: times), targets: labels)
    }

    public func loss(batchSize: Int, generator: inout SeededGenerator) -> Tensor {
        let rows = (0..<batchSize).map { _ in generator.nextInt(below: latents.shape[0]) }
        let x0 = latents.rows(rows)
        let times = (0..<batchSize).map { _ in generator.nextUniform() }
        return loss(x0: x0, labels: rows.map { labels[$0] }, times: times, noise: Tensor.randn(x0.shape, generator: &generator))
    }

    /// Held-out cross-entropy at uniformly drawn times (fixed draws), and accuracy at each of ``evaluationTimes``.
    public func evaluate(batches: Int, batchSize: Int) -> [String: Double] {
        guard let validation else { return [:] }
        var generator = SeededGenerator(seed: 0x5EED)
        let m = validation.latents.shape[0]
        var total = 0.0
        var correct = [Int](repeating: 0, count: Self.evaluationTimes.count), seen = 0
        withNoGrad {
            for b in 0..<batches {
                let rows = (0..<min(batchSize, m)).map { (b * batchSize + $0) % m }
                let x0 = validation.latents.rows(rows)
                let targets = rows.map { validation.labels[$0] }
                let times = rows.map { _ in generator.nextUniform() }
                let noise = Tensor.randn(x0.shape, generator: &generator)
                total += Double(loss(x0: x0, labels: targets, times: times, noise: noise).item)
                for (i, time) in Self.evaluationTimes.enumerated() {
                    let fixed = [Float](repeating: time, count: rows.count)
                    let logits = classifier(classifier.config.schedule.noised(x0, noise: noise, times: fixed), times: fixed)
                    correct[i] += zip(Self.predictions(logits), targets).filter { $0 == Int($1) }.count
                }
                seen += rows.count
            }
        }
        var figures = ["val_loss": total / Double(max(batches, 1))]
        for (i, time) in Self.evaluationTimes.enumerated() {
            figures["val_accuracy_t\(Int(time * 100))"] = Double(correct[i]) / Double(max(seen, 1))
        }
        return figures
    }

    /// The arg-max of every row of `logits: [n, C]`.
    static func predictions(_ logits: Tensor) -> [Int] {
        let c = logits.shape[1]
        return (0..<logits.shape[0]).map { row in
            let values = logits.data[(row * c)..<((row + 1) * c)]
            return values.indices.max { values[$0] < values[$1] }! - row * c
        }
    }

    public func save(to directory: URL) throws {
        try ModelFolder.write(config: classifier.config, weights: classifier, to: directory)
    }

    public func restore(from directory: URL) throws {
        try ModelFolder.loadWeights(classifier, from: directory)
    }
}
