import Foundation

// Fused activations and normalized exponentials, each with a hand-written backward pass.

/// tanh by a rational approximation (odd degree-13 numerator, even degree-6 denominator, the minimax
/// fit Eigen uses for float), accurate to a few ulp and, unlike libm's `tanhf`, vectorizable (no branch:
/// near 0 the ratio is x·(1 ± 1e-7)).
@inline(__always)
func fastTanh(_ input: Float) -> Float {
    let x = Swift.min(Swift.max(input, -7.90531110763549805), 7.90531110763549805)
    let x2 = x * x
    var p: Float = -2.76076847742355e-16
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 - 8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    p *= x
    var q: Float = 1.19825839466702e-06
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return p / q
}

extension Tensor {
    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        let width = shape.last ?? 1
        let rows = count / Swift.max(width, 1)
        let out = rowwiseSoftmax(data, rows: rows, width: width, log: false)
        let x = self
        return Tensor.result(shape: shape, data: out, inputs: [self]) { o in
            let (go, y) = (o.gradData!, o.data)
            x.accumulateGrad { pg in  // dx = y ∘ (dy − Σ dy∘y)
                let pg = pg.baseAddress!
                Parallel.forRanges(rows, grain: 64) { r in
                    for row in r {
                        let base = row * width
                        var dot: Float = 0
                        for j in 0..<width { dot += go[base + j] * y[base + j] }
                        for j in 0..<width { pg[base + j] += y[base + j] * (go[base + j] - dot) }
                    }
                }
            }
        }
    }

    /// Log-softmax over the last dimension.
    public func logSoftmax() -> Tensor {
        let width = shape.last ?? 1
        let rows = count / Swift.max(width, 1)
        let out = rowwiseSoftmax(data, rows: rows, width: width, log: true)
        let x = self
        return Tensor.result(shape: shape, data: out, inputs: [self]) { o in
            let (go, y) = (o.gradData!, o.data)
            x.accumulateGrad { pg in  // dx = dy − softmax · Σ dy
                let pg = pg.baseAddress!
                Parallel.forRanges(rows, grain: 64) { r in
                    for row in r {
                        let base = row * width
                        var total: Float = 0
                        for j in 0..<width { total += go[base + j] }
                        for j in 0..<width { pg[base + j] += go[base + j] - Foundation.exp(y[base + j]) * total }
                    }
                }
            }
        }
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1/(1-p)`.
    public func dropout(_ p: Float, generator: inout SeededGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: p must be in [0, 1), got \(p)")
        if p == 0 { return self }
        let keep = 1 / (1 - p)
        var mask = [Float](repeating: 0, count: count)
        for i in 0..<count where generator.nextUniform() >= p { mask[i] = keep }
        return self * Tensor(shape: shape, data: mask)
    }
}

/// Numerically stable softmax (or log-softmax) of each row of a `[rows, width]` buffer.
func rowwiseSoftmax(_ x: [Float], rows: Int, width: Int, log: Bool) -> [Float] {
    [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
        x.withUnsafeBufferPointer { px in
            let (px, po) = (px.baseAddress!, buffer.baseAddress!)
            Parallel.forRanges(rows, grain: 64) { r in
                for row in r { softmaxRow(px + row * width, po + row * width, width, log: log) }
            }
        }
        initialized = x.count
    }
}

/// Softmax of one row of `width` values from `x` into `y`.
@inline(__always)
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ width: Int, log: Bool) {
    var m = -Float.infinity
    for j in 0..<width { m = Swift.max(m, x[j]) }
    var total: Float = 0
    for j in 0..<width {
        let e = fastExp(x[j] - m)
        y[j] = e
        total += e
    }
    if log {
        let logTotal = Foundation.log(total) + m
        for j in 0..<width { y[j] = x[j] - logTotal }
    } else {
        let inv = 1 / total
        for j in 0..<width { y[j] *= inv }
    }
}

/// eˣ by range reduction (x = n·ln2 + r, |r| ≤ ln2/2) and a degree-6 Taylor polynomial for eʳ, scaled by
/// 2ⁿ through the exponent bits: relative error about 2e-7, branch-free, so softmax loops vectorize
/// (libm's `expf` is a call per element). Inputs are clamped to [-87, 88]; below that the result is ~0.
@inline(__always)
func fastExp(_ input: Float) -> Float {
    let x = Swift.min(Swift.max(input, -87), 88)
    let shifted = x * 1.44269504088896341 + 12582912  // round(x/ln2) by the 1.5·2²³ trick
    let n = shifted - 12582912
    let r = x - n * 0.693145751953125 - n * 1.428606765330187045e-06  // x − n·ln2 in two parts
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    return p * Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
}
