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
    /// model's context (one shorter window when the text is shorter than the context): each prediction sees
    /// the preceding tokens of its window. Windows go through the model
    /// `batchSize` at a time, fewer when their logits would pass `logitBudget` floats (GPT-2's 50,257-token
    /// vocabulary at 1,024 positions is 51M floats a window, so it goes one window at a time).
    public init(model: GPT, heldOut: [Int32], maxTokens: Int = 200_000, batchSize: Int = 8, logitBudget: Int = 1 << 25) {
        let usable = min(heldOut.count - 1, maxTokens)
        precondition(usable > 0, "LanguageModelMetrics: need at least 2 held-out tokens, got \(heldOut.count)")
        let t = min(model.config.contextLength, usable)
        let windows = usable / t
        let v = model.config.vocabSize
        let windowsPerBatch = max(1, min(batchSize, logitBudget / (t * v)))
        var lossSum = 0.0, hits1 = 0, hits5 = 0, count = 0
        withNoGrad {
            var w = 0
            while w < windows {
                let b = min(windowsPerBatch, windows - w)
                var x: [Int32] = [], y: [Int32] = []
                for i in 0..<b {
                    let start = (w + i) * t
                    x += heldOut[start..<(start + t)]
                    y += heldOut[(start + 1)...(start + t)]
                }
                let logits = model(x, batch: b, length: t)  // [b, T, V]
                // Per position: −log p(target) and how many tokens score above the target (its rank).
                var losses = [Double](repeating: 0, count: b * t), ranks = [Int](repeating: 0, count: b * t)
                logits.data.withUnsafeBufferPointer { values in
                    losses.withUnsafeMutableBufferPointer { loss in
                        ranks.withUnsafeMutableBufferPointer { rank in
                            Parallel.forRanges(b * t, grain: 16) { rows in
                                for row in rows {
                                    let scores = UnsafeBufferPointer(rebasing: values[(row * v)..<((row + 1) * v)])
                                    let largest = scores.max()!
                                    var sum = 0.0
                                    for score in scores { sum += Double(exp(score - largest)) }
                                    let target = scores[Int(y[row])]
                                    loss[row] = Double(largest - target) + log(sum)
                                    var higher = 0
                                    for score in scores where score > target { higher += 1; if higher >= 5 { break } }
                                    rank[row] = higher
                                }
                            }
                        }
                    }
                }
                lossSum += losses.reduce(0, +)
                hits1 += ranks.filter { $0 == 0 }.count
                hits5 += ranks.filter { $0 < 5 }.count
                count += b * t
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
