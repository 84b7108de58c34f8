import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Held-out figures of a language model: loss, perplexity and next-token accuracy.
public struct LanguageModelMetrics: Codable, Sendable {
    public var validationLoss: Double
    public var perplexity: Double
    public var top1: Double
    public var top5: Double
    public var tokens: Int

    enum CodingKeys: String, CodingKey {
        case validationLoss = "val_loss", perplexity, top1, top5, tokens
    }

    /// Scores every token of `heldOut` (up to `maxTokens`) in consecutive, non-overlapping windows of the
    /// model's context: each prediction sees the preceding tokens of its window.
    public init(model: GPT, heldOut: [Int32], maxTokens: Int = 200_000, batchSize: Int = 8) {
        let t = model.config.contextLength
        let usable = min(heldOut.count - 1, maxTokens)
        let windows = max(0, usable / t)
        precondition(windows > 0, "LanguageModelMetrics: need more than \(t) held-out tokens, got \(heldOut.count)")
        var lossSum = 0.0, hits1 = 0, hits5 = 0, count = 0
        let v = model.config.vocabSize
        withNoGrad {
            var w = 0
            while w < windows {
                let b = min(batchSize, windows - w)
                var x: [Int32] = [], y: [Int32] = []
                for i in 0..<b {
                    let start = (w + i) * t
                    x += heldOut[start..<(start + t)]
                    y += heldOut[(start + 1)...(start + t)]
                }
                let logits = model(x, batch: b, length: t)              // [b, T, V]
                let logProbs = logits.logSoftmax().data
                for row in 0..<(b * t) {
                    let base = row * v, target = Int(y[row])
                    let score = logProbs[base + target]
                    lossSum -= Double(score)
                    var higher = 0
                    for j in 0..<v where logProbs[base + j] > score { higher += 1; if higher >= 5 { break } }
                    if higher == 0 { hits1 += 1 }
                    if higher < 5 { hits5 += 1 }
                    count += 1
                }
                w += b
            }
        }
        validationLoss = lossSum / Double(count)
        perplexity = exp(validationLoss)
        top1 = Double(hits1) / Double(count)
        top5 = Double(hits5) / Double(count)
        tokens = count
    }
}
