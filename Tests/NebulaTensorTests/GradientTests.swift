import Foundation
import XCTest
@testable import NebulaTensor

/// Every differentiable op against finite differences.
final class GradientTests: XCTestCase {
    func testBroadcastArithmetic() {
        let a = randomTensor([2, 3, 4], seed: 1), bias = randomTensor([4], seed: 2), col = randomTensor([2, 1, 4], seed: 3)
        checkGradients([a, bias]) { $0[0] + $0[1] }
        checkGradients([a, col]) { $0[0] - $0[1] }
        checkGradients([a, col]) { $0[0] * $0[1] }
        let positive = randomTensor([3, 1], seed: 4).abs() + 0.5
        checkGradients([randomTensor([3, 4], seed: 5), positive]) { $0[0] / $0[1] }
        checkGradients([a]) { $0[0] * 3 + 1 }
    }

    func testUnaryFunctions() {
        let x = randomTensor([3, 5], seed: 11)
        let positive = x.abs() + 0.3
        checkGradients([x]) { $0[0].exp() }
        checkGradients([positive]) { $0[0].log() }
        checkGradients([positive]) { $0[0].sqrt() }
        checkGradients([positive]) { $0[0].pow(1.5) }
        checkGradients([x]) { $0[0].tanh() }
        checkGradients([x]) { $0[0].sigmoid() }
        checkGradients([x]) { $0[0].squared() }
        checkGradients([x]) { $0[0].sin() }
        checkGradients([x]) { $0[0].gelu() }
        checkGradients([x]) { $0[0].exactGELU() }
        checkGradients([x]) { $0[0].silu() }
    }

    func testReductions() {
        let x = randomTensor([2, 3, 4], seed: 21)
        checkGradients([x]) { $0[0].sum() }
        checkGradients([x]) { $0[0].mean() }
        checkGradients([x]) { $0[0].sum(axis: 1) }
        checkGradients([x]) { $0[0].mean(axis: -1, keepDims: true) }
        checkGradients([x]) { $0[0].variance(axis: 0) }
        checkGradients([x]) { $0[0].max(axis: 2) }
    }

    func testShapeOps() {
        let x = randomTensor([2, 3, 4], seed: 31), y = randomTensor([2, 2, 4], seed: 32)
        checkGradients([x]) { $0[0].reshaped([6, -1]) }
        checkGradients([x]) { $0[0].transposed(0, 2) }
        checkGradients([x]) { $0[0].permuted([1, 2, 0]) }
        checkGradients([x]) { $0[0].slice(axis: 1, 1..<3) }
        checkGradients([x]) { $0[0].split(axis: 2, sizes: [1, 3])[1] }
        checkGradients([x, y]) { Tensor.concatenate([$0[0], $0[1]], axis: 1) }
        checkGradients([y, y.detached()]) { Tensor.stack([$0[0], $0[1]], axis: 1) }
        let table = randomTensor([5, 3], seed: 33)
        checkGradients([table]) { $0[0].gatherRows([4, 0, 4, 2], indexShape: [2, 2]) }
        checkGradients([randomTensor([4, 3], seed: 34)]) { $0[0].scatterAddRows(indices: [1, 1, 0, 3], rows: 5) }
        checkGradients([x]) { $0[0].rows([1, 0, 1]) }
        let picked = x.rows([1, 0])  // the slices x[1], x[0]
        XCTAssertEqual(picked.shape, [2] + Array(x.shape.dropFirst()))
        let size = x.count / x.shape[0]
        XCTAssertEqual(picked.data, Array(x.data[size..<(2 * size)]) + Array(x.data[0..<size]))
    }

    func testMatmul() {
        let a = randomTensor([3, 4], seed: 41), b = randomTensor([4, 5], seed: 42)
        checkGradients([a, b]) { $0[0].matmul($0[1]) }
        checkGradients([a.transposed().detached(), b]) { $0[0].matmul($0[1], transposeA: true) }
        checkGradients([a, b.transposed().detached()]) { $0[0].matmul($0[1], transposeB: true) }
        let batched = randomTensor([2, 3, 4], seed: 43), rhs = randomTensor([2, 4, 5], seed: 44)
        checkGradients([batched, rhs]) { $0[0].matmul($0[1]) }
        checkGradients([batched, b]) { $0[0].matmul($0[1]) }  // shared right side
        checkGradients([batched.transposed().detached(), b]) { $0[0].matmul($0[1], transposeA: true) }
        checkGradients([batched, rhs.transposed().detached()]) { $0[0].matmul($0[1], transposeB: true) }
    }

    func testLinear() {
        let x = randomTensor([2, 3, 4], seed: 51), w = randomTensor([5, 4], seed: 52), b = randomTensor([5], seed: 53)
        checkGradients([x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients([x, w]) { linear($0[0], weight: $0[1]) }
    }

    func testNorms() {
        let x = randomTensor([3, 2, 6], seed: 61), w = randomTensor([6], seed: 62), b = randomTensor([6], seed: 63)
        checkGradients([x, w, b]) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients([x]) { layerNorm($0[0], weight: nil, bias: nil) }
        checkGradients([x, w]) { rmsNorm($0[0], weight: $0[1]) }
    }

    /// Bias and norm-weight gradients over thousands of rows: each equals its sum over rows, computed here
    /// in Double.
    func testParameterGradientsOverManyRows() {
        let (rows, width) = (4_100, 24)
        let x = randomTensor([rows, width], seed: 64), w = randomTensor([width], seed: 65), b = randomTensor([width], seed: 66)
        let upstream = randomTensor([rows, width], seed: 67).data
        func columnSums(_ term: (Int, Int) -> Double) -> [Float] {
            (0..<width).map { j in Float((0..<rows).reduce(0.0) { $0 + term($1, j) }) }
        }
        func assertClose(_ actual: [Float]?, _ expected: [Float], _ what: String) {
            let worst = zip(actual ?? [], expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-4, what)
        }
        for t in [x, w, b] { t.requiringGrad(); t.zeroGrad() }
        let normed = layerNorm(x, weight: w, bias: b)
        normed.backward(seed: upstream)
        let g = { (r: Int, j: Int) in Double(upstream[r * width + j]) }
        assertClose(b.grad?.data, columnSums(g), "layer norm bias")
        // x̂ = (y − b) / w
        assertClose(
            w.grad?.data, columnSums { r, j in g(r, j) * Double((normed.data[r * width + j] - b.data[j]) / w.data[j]) },
            "layer norm weight")
        for t in [x, w] { t.zeroGrad() }
        let scaled = rmsNorm(x, weight: w)
        scaled.backward(seed: upstream)
        assertClose(w.grad?.data, columnSums { r, j in g(r, j) * Double(scaled.data[r * width + j] / w.data[j]) }, "RMS norm weight")
        let weight = randomTensor([width, width], seed: 68).requiringGrad()
        b.zeroGrad()
        linear(x, weight: weight, bias: b).backward(seed: upstream)
        assertClose(b.grad?.data, columnSums(g), "linear bias")
    }

    func testSoftmaxAndCrossEntropy() {
        let x = randomTensor([3, 7], seed: 71)
        checkGradients([x]) { $0[0].softmax() }
        checkGradients([x]) { $0[0].logSoftmax() }
        checkGradients([randomTensor([2, 3, 7], seed: 72)]) { crossEntropy($0[0], targets: [1, 6, -1, 0, 3, 3]) }
    }

    func testAttention() {
        let q = randomTensor([2, 5, 8], seed: 81), k = randomTensor([2, 5, 8], seed: 82), v = randomTensor([2, 5, 8], seed: 83)
        checkGradients([q, k, v]) { scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, causal: true) }
        let kx = randomTensor([2, 6, 8], seed: 84), vx = randomTensor([2, 6, 8], seed: 85)
        let mask: [Float] = [1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0]
        checkGradients([randomTensor([2, 3, 8], seed: 86), kx, vx]) {
            scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, keyMask: mask)
        }
        // Causal with fewer queries than keys (a KV-cache step): aligned at the end.
        checkGradients([randomTensor([1, 2, 4], seed: 87), randomTensor([1, 4, 4], seed: 88), randomTensor([1, 4, 4], seed: 89)]) {
            scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 1, causal: true)
        }
    }

    /// Attention read from a fused q|k|v tensor: finite differences, and the same values and gradients as
    /// splitting it and attending (causal and with a key mask).
    func testFusedSelfAttention() {
        let qkv = randomTensor([2, 5, 24], seed: 91)
        let mask: [Float] = [1, 1, 0, 1, 1, 1, 1, 1, 1, 0]
        checkGradients([qkv]) { fusedSelfAttention($0[0], heads: 2, causal: true) }
        checkGradients([qkv]) { fusedSelfAttention($0[0], heads: 2, causal: false, keyMask: mask) }
        for (causal, keyMask) in [(true, nil), (false, mask)] as [(Bool, [Float]?)] {
            let weights = randomTensor([2, 5, 8], seed: 92)
            let fused = qkv.detached().requiringGrad(), split = qkv.detached().requiringGrad()
            let a = fusedSelfAttention(fused, heads: 2, causal: causal, keyMask: keyMask)
            let parts = split.split(axis: 2, sizes: [8, 8, 8])
            let b = scaledDotProductAttention(query: parts[0], key: parts[1], value: parts[2], heads: 2, causal: causal, keyMask: keyMask)
            (a * weights).sum().backward()
            (b * weights).sum().backward()
            XCTAssertEqual(a.data, b.data)
            XCTAssertLessThan(zip(fused.grad!.data, split.grad!.data).map { abs($0 - $1) }.max()!, 1e-6)
        }
    }

    /// Causal attention over more than one block of 64 queries (each block's products reach only the keys it
    /// sees), and over more than one tile of 256 keys (the online softmax rescales what came before):
    /// finite differences, and the values of a plain softmax(QKᵀ/√D + mask)·V, with as many queries as keys
    /// and with fewer, causal or with padding.
    func testAttentionAcrossQueryBlocksAndKeyTiles() {
        checkGradients([randomTensor([1, 70, 12], seed: 93)]) { fusedSelfAttention($0[0], heads: 2, causal: true) }
        checkGradients([randomTensor([1, 270, 6], seed: 97)]) { fusedSelfAttention($0[0], heads: 1, causal: true) }
        let padding = (0..<270).map { $0 % 7 == 3 || $0 > 260 ? Float(0) : 1 }
        checkGradients([randomTensor([1, 270, 6], seed: 98)]) { fusedSelfAttention($0[0], heads: 1, causal: false, keyMask: padding) }
        for (tq, tk, causal) in [(150, 150, true), (90, 150, true), (300, 300, true), (90, 600, true), (40, 600, false)] {
            let (c, heads) = (8, 2)
            let (q, k, v) = (randomTensor([1, tq, c], seed: 94), randomTensor([1, tk, c], seed: 95), randomTensor([1, tk, c], seed: 96))
            // Padding on every 5th key, and on the whole last tile but one key, when not causal.
            let mask: [Float]? = causal ? nil : (0..<tk).map { $0 % 5 == 2 || ($0 >= 256 && $0 < 511) ? 0 : 1 }
            let y = scaledDotProductAttention(query: q, key: k, value: v, heads: heads, causal: causal, keyMask: mask)
            var maxError: Float = 0
            for h in 0..<heads {
                for i in 0..<tq {
                    let seen = (0..<(causal ? i + tk - tq + 1 : tk)).filter { mask == nil || mask![$0] != 0 }
                    let scores = seen.map { j in
                        (0..<4).reduce(Float(0)) { $0 + q.data[i * c + h * 4 + $1] * k.data[j * c + h * 4 + $1] } / 2
                    }
                    let m = scores.max()!
                    let weights = scores.map { Foundation.exp($0 - m) }
                    let total = weights.reduce(0, +)
                    for e in 0..<4 {
                        let expected = zip(seen, weights).reduce(Float(0)) { $0 + $1.1 / total * v.data[$1.0 * c + h * 4 + e] }
                        maxError = max(maxError, abs(y.data[i * c + h * 4 + e] - expected))
                    }
                }
            }
            XCTAssertLessThan(maxError, 1e-5, "\(tq) queries, \(tk) keys, causal \(causal)")
        }
    }
}

final class FastMathTests: XCTestCase {
    func testFastExpAndTanhMatchLibm() {
        var worstExp: Float = 0, worstTanh: Float = 0
        for i in 0...20000 {
            let x = -87 + Float(i) * (175.0 / 20000)
            let exact = Foundation.exp(Double(x))
            worstExp = max(worstExp, Float(abs(Double(fastExp(x)) - exact) / exact))
            let t = -10 + Float(i) * (20.0 / 20000)
            worstTanh = max(worstTanh, abs(fastTanh(t) - Float(Foundation.tanh(Double(t)))))
        }
        XCTAssertLessThan(worstExp, 1e-6)
        XCTAssertLessThan(worstTanh, 1e-6)
        XCTAssertEqual(fastExp(-200), 0, accuracy: 1e-37)
    }
}

final class TensorBasicsTests: XCTestCase {
    func testCreationComparisonsAndSelection() {
        XCTAssertEqual(Tensor.arange(4).data, [0, 1, 2, 3])
        XCTAssertEqual(Tensor.fromInts([3, 1], shape: [2]).data, [3, 1])
        let x = Tensor(shape: [2, 3], data: [1, 5, 2, 7, 0, 7])
        XCTAssertEqual(x.greater(2).data, [0, 1, 0, 1, 0, 1])
        XCTAssertEqual(x.less(Tensor(shape: [3], data: [2, 2, 2])).data, [1, 0, 0, 0, 1, 0])
        XCTAssertEqual(x.equal(Tensor(scalar: 7)).data, [0, 0, 0, 1, 0, 1])
        XCTAssertEqual(x.argmax(axis: 1).data, [1, 0], "the first maximum wins")
        XCTAssertEqual(x.max(axis: 0).data, [7, 5, 7])
        let a = randomTensor([2, 3], seed: 90), b = randomTensor([2, 3], seed: 91)
        let chosen = Tensor.where(x.greater(2), a, b)
        for i in 0..<6 { XCTAssertEqual(chosen.data[i], x.data[i] > 2 ? a.data[i] : b.data[i]) }
        checkGradients([a, b]) { Tensor.where(x.greater(2), $0[0], $0[1]) }
        checkGradients([randomTensor([3, 4], seed: 92)]) { $0[0].relu() }
        checkGradients([randomTensor([3, 4], seed: 93)]) { $0[0].cos() }
        checkGradients([randomTensor([3, 4], seed: 94)]) { $0[0].clamped(min: -0.5, max: 0.5) }
    }

    func testDropoutKeepsTheExpectation() {
        var rng = SeededGenerator(seed: 3)
        let ones = Tensor.ones([10_000])
        let dropped = ones.dropout(0.25, generator: &rng)
        let zeros = dropped.data.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 10_000, 0.25, accuracy: 0.02)
        XCTAssertEqual(dropped.data.reduce(0, +) / 10_000, 1, accuracy: 0.03, "survivors are scaled by 1/(1−p)")
        XCTAssertTrue(ones.dropout(0, generator: &rng) === ones)
    }

    func testNoGradScopeRecordsNothing() {
        let w = randomTensor([2, 2], seed: 95).requiringGrad()
        let y = withNoGrad { (w * 2).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
        let z = (w * 2).sum()
        XCTAssertFalse(z.isLeaf)
        z.backward()
        XCTAssertEqual(w.gradData!, [2, 2, 2, 2])
        XCTAssertFalse((w.detached() * 3).sum().requiresGrad, "detached tensors carry no graph")
    }

    func testNoGradScopeBelongsToItsThread() {
        // One thread holds a no-grad scope open while another records a graph: the modes do not mix.
        // Unchecked, and safe: both threads only read `w`'s values (each builds its own graph), in the order the
        // semaphores impose.
        nonisolated(unsafe) let w = randomTensor([2, 2], seed: 96).requiringGrad()
        let inside = DispatchSemaphore(value: 0), recorded = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var inferenceRecorded = true
        Thread.detachNewThread {
            withNoGrad {
                inside.signal()
                recorded.wait()
                inferenceRecorded = (w * 2).sum().requiresGrad
            }
            done.signal()
        }
        inside.wait()
        XCTAssertTrue(GradMode.isEnabled)
        let training = (w * 2).sum()
        recorded.signal()
        done.wait()
        XCTAssertTrue(training.requiresGrad, "another thread's no-grad scope switched recording off here")
        XCTAssertFalse(inferenceRecorded)
    }
}
