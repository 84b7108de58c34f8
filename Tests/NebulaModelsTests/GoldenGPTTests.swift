import Foundation
import XCTest
import NebulaNN
import NebulaTensor
@testable import NebulaModels

/// llm.c's `test_gpt2` pattern: the same GPT in PyTorch (`reference/golden_gpt.py`) wrote its weights,
/// a batch, the logits, the loss, every gradient and ten AdamW steps; Nebula must reproduce them.
final class GoldenGPTTests: XCTestCase {
    func testMatchesPyTorch() throws {
        let url = Bundle.module.url(forResource: "gpt_golden", withExtension: "safetensors", subdirectory: "Fixtures")!
        let file = try SafeTensorsFile(contentsOf: url)
        let config = GPTConfig(vocabSize: 64, contextLength: 16, layers: 2, heads: 2, width: 32)
        var rng = SeededGenerator(seed: 0)
        let gpt = GPT(config, generator: &rng)
        try gpt.load(file, prefix: "param.")
        let ids = try file.integers("input.ids").map(Int32.init)
        let targets = try file.integers("input.targets").map(Int32.init)
        let (batch, length) = (4, 16)

        // Forward: logits and loss.
        let logits = gpt(ids, batch: batch, length: length)
        let logitsError = maxRelativeError(logits.data, try file.floats("output.logits"))
        let loss = crossEntropy(logits, targets: targets)
        let expectedLoss = try file.floats("output.loss")[0]
        XCTAssertEqual(loss.item, expectedLoss, accuracy: 1e-5)
        XCTAssertLessThanOrEqual(logitsError, 1e-5)

        // Backward: every parameter gradient.
        loss.backward()
        var worstGradient: (String, Float) = ("", 0)
        for (name, p) in gpt.namedParameters() {
            let error = maxRelativeError(p.gradData!, try file.floats("grad.\(name)"))
            if error > worstGradient.1 { worstGradient = (name, error) }
        }
        XCTAssertLessThanOrEqual(worstGradient.1, 1e-4, "worst gradient: \(worstGradient.0)")

        // Ten AdamW steps with clipping, on the same batch.
        let optimizer = AdamW(learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        gpt.zeroGrad()
        let expectedLosses = try file.floats("train.losses"), expectedNorms = try file.floats("train.grad_norms")
        var losses: [Float] = [], norms: [Float] = []
        for _ in 0..<10 {
            let loss = gpt.loss(ids, targets: targets, batch: batch, length: length)
            losses.append(loss.item)
            loss.backward()
            norms.append(clipGradientNorm(gpt.parameters(), maxNorm: 1))
            optimizer.step(gpt)
        }
        let lossError = maxRelativeError(losses, expectedLosses), normError = maxRelativeError(norms, expectedNorms)
        XCTAssertLessThanOrEqual(lossError, 1e-4, "losses \(losses) vs \(expectedLosses)")
        XCTAssertLessThanOrEqual(normError, 1e-4)
        // The key bias has an exactly zero gradient (softmax ignores a shift shared by all keys), so its
        // Adam update divides rounding noise by rounding noise in both implementations: left out here.
        var worstParameter: Float = 0
        for (name, p) in gpt.namedParameters() {
            var (mine, theirs) = (p.data, try file.floats("final.\(name)"))
            if name.hasSuffix("attn.qkv.bias") {
                let c = config.width
                mine.removeSubrange(c..<(2 * c))
                theirs.removeSubrange(c..<(2 * c))
            }
            worstParameter = max(worstParameter, maxRelativeError(mine, theirs))
        }
        XCTAssertLessThanOrEqual(worstParameter, 1e-4)
        print(
            String(
                format:
                    "golden GPT max relative errors: logits %.2e, loss %.2e, gradients %.2e (%@), 10-step losses %.2e, grad norms %.2e, final parameters %.2e",
                logitsError, abs(loss.item - expectedLoss) / expectedLoss, worstGradient.1, worstGradient.0, lossError, normError,
                worstParameter))
    }
}

/// Largest |a − b| / max(1, |b|) (absolute near zero, relative elsewhere).
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
}
