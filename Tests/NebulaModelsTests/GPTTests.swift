import XCTest
import NebulaNN
import NebulaTensor
@testable import NebulaModels

final class GPTTests: XCTestCase {
    func makeModel(seed: UInt64 = 0) -> GPT {
        var rng = SeededGenerator(seed: seed)
        return GPT(GPTConfig(vocabSize: 50, contextLength: 16, layers: 2, heads: 2, width: 16), generator: &rng)
    }

    /// Decoding one token at a time through the KV cache gives the same logits as the full forward pass.
    func testKVCacheMatchesFullForward() {
        let gpt = makeModel()
        let ids: [Int32] = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7]
        let full = withNoGrad { gpt(ids, batch: 1, length: ids.count) }          // [1, 10, 50]
        let caches = gpt.makeCaches()
        var incremental: [Float] = []
        withNoGrad {
            incremental += gpt(Array(ids[0..<4]), batch: 1, length: 4, caches: caches).data  // prompt in one go
            for i in 4..<ids.count { incremental += gpt([ids[i]], batch: 1, length: 1, caches: caches).data }
        }
        XCTAssertEqual(caches[0].count, ids.count)
        XCTAssertEqual(full.count, incremental.count)
        let maxError = zip(full.data, incremental).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(maxError, 1e-5)
    }

    /// Sequences of different lengths decoded together (one new position each, their own caches) get the
    /// outputs each gets alone.
    func testRaggedBatchDecodingMatchesEachSequenceAlone() {
        var rng = SeededGenerator(seed: 4)
        let attention = SelfAttention(16, heads: 2, causal: true, generator: &rng)
        let prefixes = [3, 7, 1].map { Tensor.randn([1, $0, 16], generator: &rng) }        // cached positions
        let new = Tensor.randn([3, 1, 16], generator: &rng)                                  // one new position each
        withNoGrad {
            let alone = prefixes.enumerated().map { row, prefix -> Tensor in
                let cache = KVCache()
                _ = attention(prefix, cache: cache)
                return attention(new.slice(axis: 0, row..<(row + 1)), cache: cache)        // [1, 1, 16]
            }
            let caches = prefixes.map { prefix -> KVCache in
                let cache = KVCache()
                _ = attention(prefix, cache: cache)
                return cache
            }
            let together = attention(new, caches: caches)                                    // [3, 1, 16]
            XCTAssertEqual(together.shape, [3, 1, 16])
            XCTAssertEqual(caches.map(\.count), [4, 8, 2])
            let maxError = zip(together.data, alone.flatMap(\.data)).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(maxError, 1e-5)
        }
    }

    func testTrainingReducesLossOnARepeatingSequence() {
        let gpt = makeModel(seed: 1)
        let pattern: [Int32] = (0..<17).map { Int32($0 % 5 + 1) }
        let opt = AdamW(learningRate: 1e-2, weightDecay: 0)
        var first: Float = 0, last: Float = 0
        for step in 0..<40 {
            let loss = gpt.loss(Array(pattern[0..<16]), targets: Array(pattern[1...16]), batch: 1, length: 16)
            if step == 0 { first = loss.item }
            last = loss.item
            loss.backward()
            opt.step(gpt)
        }
        XCTAssertEqual(first, log(50), accuracy: 0.3, "starts near uniform")
        XCTAssertLessThan(last, 0.2)
    }

    func testResidualProjectionInit() {
        var rng = SeededGenerator(seed: 2)
        let gpt = GPT(GPTConfig(vocabSize: 64, contextLength: 32, layers: 8, heads: 4, width: 64), generator: &rng)
        func std(_ t: Tensor) -> Float {
            let m = t.data.reduce(0, +) / Float(t.count)
            return (t.data.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(t.count)).squareRoot()
        }
        XCTAssertEqual(std(gpt.blocks[0].mlp.proj.weight), 0.02 / 4, accuracy: 0.0005)
        XCTAssertEqual(std(gpt.blocks[0].mlp.fc.weight), 0.02, accuracy: 0.001)
    }
}
