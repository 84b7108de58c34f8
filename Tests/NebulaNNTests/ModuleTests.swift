import XCTest
import NebulaTensor
@testable import NebulaNN

final class ModuleTests: XCTestCase {
    final class Toy: Module {
        let embed: Embedding
        let blocks: [TransformerBlock]
        let head: Linear
        let norm: LayerNorm?
        init(generator: inout SeededGenerator) {
            embed = Embedding(10, 8, generator: &generator)
            blocks = (0..<2).map { _ in TransformerBlock(8, heads: 2, causal: true, generator: &generator) }
            head = Linear(8, 3, bias: false, generator: &generator)
            norm = LayerNorm(8)
        }
    }

    func testParameterNamesFollowPropertyPaths() {
        var rng = SeededGenerator(seed: 1)
        let toy = Toy(generator: &rng)
        let names = toy.namedParameters().map(\.0)
        XCTAssertEqual(names.first, "embed.weight")
        XCTAssertTrue(names.contains("blocks.1.attn.qkv.weight"))
        XCTAssertTrue(names.contains("blocks.0.mlp.proj.bias"))
        XCTAssertTrue(names.contains("norm.weight"), "an optional sub-module is visited")
        XCTAssertFalse(names.contains("head.bias"), "an absent bias is not a parameter")
        XCTAssertEqual(Set(names).count, names.count)
        // 10·8 + 2·(2·(8+8) + (8·24+24) + (8·8+8) + (8·32+32) + (32·8+8)) + 8·3 + 16
        XCTAssertEqual(toy.parameterCount, 80 + 2 * (32 + 216 + 72 + 288 + 264) + 24 + 16)
    }

    func testFreezeAndTrainMode() {
        var rng = SeededGenerator(seed: 2)
        let toy = Toy(generator: &rng)
        toy.blocks[0].freeze()
        XCTAssertEqual(toy.trainableParameters().count, toy.namedParameters().count - toy.blocks[0].namedParameters().count)
        toy.eval()
        XCTAssertFalse(toy.blocks[1].mlp.fc.isTraining)
        toy.train()
        XCTAssertTrue(toy.head.isTraining)
    }
}

final class OptimizerTests: XCTestCase {
    /// AdamW against the update written out by hand for two steps.
    func testAdamWMatchesHandComputation() {
        let w = Tensor(shape: [1, 2], data: [1, -2]).requiringGrad()
        let b = Tensor(shape: [2], data: [0.5, 0.5]).requiringGrad()
        let opt = AdamW(learningRate: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5)
        var expectedW: [Double] = [1, -2], expectedB: [Double] = [0.5, 0.5]
        var mW = [0.0, 0.0], vW = [0.0, 0.0], mB = [0.0, 0.0], vB = [0.0, 0.0]
        for step in 1...2 {
            let g: [Double] = [0.3 * Double(step), -0.1]
            w.setGrad(g.map(Float.init)); b.setGrad(g.map(Float.init))
            opt.step([("w", w), ("b", b)])
            for i in 0..<2 {
                mW[i] = 0.9 * mW[i] + 0.1 * g[i]; vW[i] = 0.99 * vW[i] + 0.01 * g[i] * g[i]
                mB[i] = 0.9 * mB[i] + 0.1 * g[i]; vB[i] = 0.99 * vB[i] + 0.01 * g[i] * g[i]
                let c1 = 1 - pow(0.9, Double(step)), c2 = 1 - pow(0.99, Double(step))
                expectedW[i] = expectedW[i] * (1 - 0.1 * 0.5) - 0.1 * (mW[i] / c1) / ((vW[i] / c2).squareRoot() + 1e-8)
                expectedB[i] = expectedB[i] - 0.1 * (mB[i] / c1) / ((vB[i] / c2).squareRoot() + 1e-8)  // 1-D: no decay
            }
        }
        for i in 0..<2 {
            XCTAssertEqual(Double(w.data[i]), expectedW[i], accuracy: 1e-5)
            XCTAssertEqual(Double(b.data[i]), expectedB[i], accuracy: 1e-5)
        }
        XCTAssertNil(w.gradData, "step clears gradients")
        XCTAssertEqual(opt.stepCount, 2)
    }

    /// The one pass over all parameters, whose workers' ranges start and end inside tensors, gives each
    /// element the update a separate loop per parameter gives; a parameter listed twice is updated once,
    /// one without a gradient not at all, and moments survive `moments(of:)` / `setMoments`.
    func testAdamWOnePassOverManyParametersMatchesElementwiseUpdate() {
        var rng = SeededGenerator(seed: 7)
        let counts = [[3], [40_000], [17, 33], [1], [70_001], [9, 8]]
        let tensors = counts.map { Tensor.randn($0, generator: &rng).requiringGrad() }
        let frozen = Tensor.randn([5], generator: &rng).requiringGrad()
        let named = tensors.enumerated().map { ("p\($0.offset)", $0.element) } + [("again", tensors[1]), ("frozen", frozen)]
        let optimizer = AdamW(learningRate: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        var expected = tensors.map { $0.data.map(Double.init) }
        var m = tensors.map { [Double](repeating: 0, count: $0.count) }, v = m
        let frozenBefore = frozen.data
        for step in 1...3 {
            let gradients = tensors.map { Tensor.randn($0.shape, generator: &rng).data }
            for (tensor, g) in zip(tensors, gradients) { tensor.setGrad(g) }
            optimizer.step(named)
            let (c1, c2) = (1 - pow(0.9, Double(step)), 1 - pow(0.95, Double(step)))
            for p in tensors.indices {
                let decay = tensors[p].rank >= 2 ? 1 - 0.01 * 0.1 : 1
                for i in 0..<tensors[p].count {
                    let g = Double(gradients[p][i])
                    m[p][i] = 0.9 * m[p][i] + 0.1 * g
                    v[p][i] = 0.95 * v[p][i] + 0.05 * g * g
                    expected[p][i] = expected[p][i] * decay - 0.01 * (m[p][i] / c1) / ((v[p][i] / c2).squareRoot() + 1e-8)
                }
            }
        }
        for p in tensors.indices {
            let worst = zip(tensors[p].data, expected[p]).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst, 1e-5, "parameter \(p)")
            let stored = optimizer.moments(of: "p\(p)")!
            XCTAssertEqual(Double(stored.first.last!), m[p].last!, accuracy: 1e-6)
            XCTAssertEqual(Double(stored.second.first!), v[p].first!, accuracy: 1e-6)
        }
        XCTAssertEqual(frozen.data, frozenBefore)
        XCTAssertEqual(optimizer.parameterNames, ["p0", "p1", "p2", "p3", "p4", "p5"])

        let restored = AdamW(learningRate: 0.01)
        for name in optimizer.parameterNames.reversed() {
            let (first, second) = optimizer.moments(of: name)!
            restored.setMoments(of: name, first: first, second: second)
        }
        for name in optimizer.parameterNames { XCTAssertEqual(restored.moments(of: name)!.second, optimizer.moments(of: name)!.second) }
    }

    func testCosineScheduleShape() {
        let lr = cosineSchedule(peak: 1e-3, warmup: 100, total: 2000, minimum: 1e-4)
        XCTAssertEqual(lr(0), 1e-3 / 101, accuracy: 1e-9)
        XCTAssertEqual(lr(99), 1e-3 * 100 / 101, accuracy: 1e-9)
        XCTAssertEqual(lr(100), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(lr(1050), 5.5e-4, accuracy: 1e-7)
        XCTAssertEqual(lr(2000), 1e-4, accuracy: 1e-9)
        XCTAssertGreaterThan(lr(500), lr(1500))
    }

    func testClipGradientNorm() {
        let a = Tensor(shape: [2], data: [0, 0]).requiringGrad(), b = Tensor(shape: [1], data: [0]).requiringGrad()
        a.setGrad([3, 0]); b.setGrad([4])
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(a.gradData![0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.gradData![0], 0.8, accuracy: 1e-5)
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(b.gradData![0], 0.8, accuracy: 1e-5, "no change below the limit")
    }

    func testEMA() {
        var rng = SeededGenerator(seed: 3)
        let layer = Linear(2, 2, generator: &rng)
        let ema = EMA(layer, decay: 0.5)
        let original = layer.weight.data
        layer.weight.assign(original.map { $0 + 2 })
        ema.update(layer)
        let target = Linear(2, 2, generator: &rng)
        ema.copy(to: target)
        for i in 0..<4 { XCTAssertEqual(target.weight.data[i], original[i] + 1, accuracy: 1e-6) }
    }

    /// Two half batches with the loss scaled by 1/2 accumulate the same gradient as one full batch.
    func testGradientAccumulationMatchesFullBatch() {
        var rng = SeededGenerator(seed: 4)
        let layer = Linear(3, 4, generator: &rng)
        let x = Tensor.randn([4, 3], generator: &rng)
        let targets: [Int32] = [0, 3, 2, 1]
        crossEntropy(layer(x), targets: targets).backward()
        let full = layer.weight.gradData!
        layer.zeroGrad()
        for half in 0..<2 {
            let part = x.slice(axis: 0, (2 * half)..<(2 * half + 2))
            (crossEntropy(layer(part), targets: Array(targets[(2 * half)..<(2 * half + 2)])) * 0.5).backward()
        }
        for (a, b) in zip(full, layer.weight.gradData!) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
