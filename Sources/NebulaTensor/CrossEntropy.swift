import Foundation

/// Fused softmax cross-entropy: the mean over positions whose target is not `ignoreIndex` of
/// `−log softmax(logits)[target]`. `logits` is `[..., V]`; `targets` holds one class per row.
///
/// ```swift
/// let loss = crossEntropy(logits, targets: y)   // scalar
/// loss.backward()
/// ```
/// Returns a scalar; with no valid target the loss is 0 and so is the gradient.
public func crossEntropy(_ logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -1) -> Tensor {
    let vocab = logits.shape.last!
    let rows = logits.count / vocab
    precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows of logits \(logits.shape)")
    for (i, t) in targets.enumerated() where t != ignoreIndex && (t < 0 || Int(t) >= vocab) {
        preconditionFailure("crossEntropy: target \(t) at position \(i) is outside 0..<\(vocab)")
    }
    let logProbs = rowwiseSoftmax(logits.data, rows: rows, width: vocab, log: true)  // [rows, V]
    var total: Double = 0
    var valid = 0
    for row in 0..<rows where targets[row] != ignoreIndex {
        total -= Double(logProbs[row * vocab + Int(targets[row])])
        valid += 1
    }
    let loss = valid > 0 ? Float(total / Double(valid)) : 0
    return Tensor.result(shape: [], data: [loss], inputs: [logits]) { o in
        guard valid > 0 else { return }
        let scale = o.gradData![0] / Float(valid)
        logits.accumulateGrad { pg in
            let pg = pg.baseAddress!
            logProbs.withUnsafeBufferPointer { pp in
                let pp = pp.baseAddress!
                Parallel.forRanges(rows, grain: max(1, 8192 / vocab)) { r in
                    for row in r where targets[row] != ignoreIndex {
                        let base = row * vocab
                        for j in 0..<vocab { pg[base + j] += scale * exp(pp[base + j]) }
                        pg[base + Int(targets[row])] -= scale
                    }
                }
            }
        }
    }
}
