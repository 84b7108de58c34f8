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
        let full = withNoGrad { gpt(ids, batch: 1, length: ids.count) }  // [1, 10, 50]
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
        let prefixes = [3, 7, 1].map { Tensor.randn([1, $0, 16], generator: &rng) }  // cached positions
        let new = Tensor.randn([3, 1, 16], generator: &rng)  // one new position each
        withNoGrad {
            let alone = prefixes.enumerated().map { row, prefix -> Tensor in
                let cache = KVCache()
                _ = attention(prefix, cache: cache)
                return attention(new.slice(axis: 0, row..<(row + 1)), cache: cache)  // [1, 1, 16]
            }
            let caches = prefixes.map { prefix -> KVCache in
                let cache = KVCache()
                _ = attention(prefix, cache: cache)
                return cache
            }
            let together = attention(new, caches: caches)  // [3, 1, 16]
            XCTAssertEqual(together.shape, [3, 1, 16])
            XCTAssertEqual(caches.map(\.count), [4, 8, 2])
            let maxError = zip(together.data, alone.flatMap(\.data)).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(maxError, 1e-5)
        }
    }

    /// Two rows sharing one cache, decoded a position at a time past the cache's first growth (16 positions),
    /// match the full forward pass, without gradient (the in-place decoding path) and with it (the general one).
    func testBatchedCacheDecodingMatchesFullForwardWithAndWithoutGradient() {
        var rng = SeededGenerator(seed: 5)
        let gpt = GPT(GPTConfig(vocabSize: 50, contextLength: 40, layers: 2, heads: 2, width: 16), generator: &rng)
        let (b, t) = (2, 30)
        let ids = (0..<(b * t)).map { _ in Int32(rng.nextInt(below: 50)) }
        let full = withNoGrad { gpt(ids, batch: b, length: t) }.data  // [2, 30, 50]
        func column(_ i: Int) -> [Int32] { (0..<b).map { ids[$0 * t + i] } }
        for recording in [false, true] {
            let caches = gpt.makeCaches()
            var steps: [[Float]] = []  // [step][B · 50]
            let run = {
                let prompt = (0..<b).flatMap { ids[($0 * t)..<($0 * t + 3)] }
                let logits = gpt(prompt, batch: b, length: 3, caches: caches).data  // [2, 3, 50]
                for i in 0..<3 { steps.append((0..<b).flatMap { logits[(($0 * 3 + i) * 50)..<(($0 * 3 + i + 1) * 50)] }) }
                for i in 3..<t { steps.append(gpt(column(i), batch: b, length: 1, caches: caches).data) }
            }
            if recording { run() } else { withNoGrad(run) }
            XCTAssertEqual(caches[1].count, t)
            var maxError: Float = 0
            for i in 0..<t {
                for row in 0..<b {
                    for v in 0..<50 {
                        maxError = max(maxError, abs(steps[i][row * 50 + v] - full[(row * t + i) * 50 + v]))
                    }
                }
            }
            XCTAssertLessThan(maxError, 1e-5, recording ? "with gradient recording" : "without")
        }
    }

    /// `decodeStep` over rows with caches of different lengths gives each row the logits of the full forward
    /// pass at its position, and batched greedy generation gives each prompt the tokens it gets alone, also
    /// past the context (the sliding window).
    func testBatchedGenerationMatchesEachPromptAlone() {
        let gpt = makeModel(seed: 6)
        let sequences: [[Int32]] = [[3, 14, 15, 9, 26], [5, 35], [8, 9, 7, 9, 3, 2, 38, 4]]
        withNoGrad {
            let caches = sequences.map { sequence -> [KVCache] in
                let caches = gpt.makeCaches()
                _ = gpt(Array(sequence.dropLast()), batch: 1, length: sequence.count - 1, caches: caches)
                return caches
            }
            let logits = gpt.decodeStep(sequences.map { $0.last! }, caches: caches)  // [3, 50]
            XCTAssertEqual(logits.shape, [3, 50])
            for (row, sequence) in sequences.enumerated() {
                let full = gpt(sequence, batch: 1, length: sequence.count).data  // [1, T, 50]
                let expected = full[((sequence.count - 1) * 50)...]
                let maxError = zip(logits.data[(row * 50)..<((row + 1) * 50)], expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(maxError, 1e-5, "row \(row)")
            }
        }
        let prompts = sequences.map { $0.map(Int.init) }
        let greedy = SamplingOptions(temperature: 0)
        var rng = SeededGenerator(seed: 0)
        let together = gpt.generate(prompts: prompts, maxTokens: 30, options: greedy, generator: &rng)
        for (row, prompt) in prompts.enumerated() {
            let alone = gpt.generate(prompt: prompt, maxTokens: 30, options: greedy, generator: &rng)
            XCTAssertEqual(together[row], alone, "row \(row)")
            XCTAssertEqual(alone.count, 30)
        }
        let stop = together[1][4]
        let stopped = gpt.generate(prompts: prompts, maxTokens: 30, options: greedy, stopToken: stop, generator: &rng)
        XCTAssertEqual(stopped[1], Array(together[1].prefix(through: together[1].firstIndex(of: stop)!)), "a row ends with its stop token")
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
