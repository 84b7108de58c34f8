import Foundation

// Elementwise arithmetic with NumPy broadcasting, unary math functions, comparisons and `where`.

// MARK: - Broadcasting machinery

/// Applies `op` elementwise over the broadcast of `a` and `b`, with fast paths for equal shapes and for
/// an operand that repeats along leading dimensions (bias, positions, scalars).
@inline(__always)
private func broadcastMap(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) -> ([Int], [Float]) {
    let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
    let n = outShape.reduce(1, *)
    let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                let po = buffer.baseAddress!
                if a.count == n && b.count == n {
                    Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { po[i] = op(pa[i], pb[i]) } }
                } else if a.count == n && isSuffixBroadcast(b.shape, of: outShape) {
                    let m = b.count
                    Parallel.forRanges(n / m, grain: max(1, elementwiseGrain / m)) { rows in
                        for row in rows { let base = row * m; for j in 0..<m { po[base + j] = op(pa[base + j], pb[j]) } }
                    }
                } else if b.count == n && isSuffixBroadcast(a.shape, of: outShape) {
                    let m = a.count
                    Parallel.forRanges(n / m, grain: max(1, elementwiseGrain / m)) { rows in
                        for row in rows { let base = row * m; for j in 0..<m { po[base + j] = op(pa[j], pb[base + j]) } }
                    }
                } else {
                    let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
                    forEachBroadcastOffset(outShape, sa, sb) { i, ia, ib in po[i] = op(pa[ia], pb[ib]) }
                }
            }
        }
        initialized = n
    }
    return (outShape, out)
}

/// Accumulates `grad` (of the broadcast output shape) into `input`'s gradient, summing over the
/// dimensions along which `input` was broadcast. `scale(i, ia, ib)` gives the local derivative for
/// output element i (offsets ia, ib into the two operands).
@inline(__always)
private func accumulateBroadcastGrad(
    into input: Tensor, isFirst: Bool, outShape: [Int], other: Tensor, grad: [Float],
    _ local: (Int, Int, Int) -> Float
) {
    guard input.requiresGrad else { return }
    let n = grad.count
    let (a, b) = isFirst ? (input, other) : (other, input)
    input.withGradBuffer { g in
        grad.withUnsafeBufferPointer { go in
            if a.count == n && b.count == n {
                let pg = g.baseAddress!
                Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { pg[i] += go[i] * local(i, i, i) } }
            } else {
                let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
                forEachBroadcastOffset(outShape, sa, sb) { i, ia, ib in
                    g[isFirst ? ia : ib] += go[i] * local(i, ia, ib)
                }
            }
        }
    }
}

extension Tensor {
    /// Sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastMap(a, b, +)
        return result(shape: shape, data: out, inputs: [a, b]) { o in
            let g = o.gradData!
            reduceGradToShape(g, from: shape, into: a)
            reduceGradToShape(g, from: shape, into: b)
        }
    }

    /// Difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastMap(a, b, -)
        return result(shape: shape, data: out, inputs: [a, b]) { o in
            let g = o.gradData!
            reduceGradToShape(g, from: shape, into: a)
            reduceGradToShape(g, from: shape, into: b, scale: -1)
        }
    }

    /// Product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastMap(a, b, *)
        return result(shape: shape, data: out, inputs: [a, b]) { o in
            let g = o.gradData!
            let ad = a.data, bd = b.data
            accumulateBroadcastGrad(into: a, isFirst: true, outShape: shape, other: b, grad: g) { _, _, ib in bd[ib] }
            accumulateBroadcastGrad(into: b, isFirst: false, outShape: shape, other: a, grad: g) { _, ia, _ in ad[ia] }
        }
    }

    /// Quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastMap(a, b, /)
        return result(shape: shape, data: out, inputs: [a, b]) { o in
            let g = o.gradData!
            let ad = a.data, bd = b.data
            accumulateBroadcastGrad(into: a, isFirst: true, outShape: shape, other: b, grad: g) { _, _, ib in 1 / bd[ib] }
            accumulateBroadcastGrad(into: b, isFirst: false, outShape: shape, other: a, grad: g) { _, ia, ib in
                -ad[ia] / (bd[ib] * bd[ib])
            }
        }
    }

    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }

    /// `x * scale + shift`, elementwise.
    public func affine(scale: Float, shift: Float) -> Tensor {
        unary({ $0 * scale + shift }, derivative: { _, _ in scale })
    }
}

/// Accumulates `grad` into `input`'s gradient, summing over broadcast dimensions.
func reduceGradToShape(_ grad: [Float], from shape: [Int], into input: Tensor, scale: Float = 1) {
    guard input.requiresGrad else { return }
    let n = grad.count
    input.withGradBuffer { g in
        grad.withUnsafeBufferPointer { go in
            let pg = g.baseAddress!
            if input.count == n {
                Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { pg[i] += scale * go[i] } }
            } else if isSuffixBroadcast(input.shape, of: shape) {
                let m = input.count
                for row in 0..<(n / m) {
                    let base = row * m
                    for j in 0..<m { pg[j] += scale * go[base + j] }
                }
            } else {
                let s = broadcastStrides(input.shape, to: shape)
                forEachBroadcastOffset(shape, s, s) { i, ia, _ in pg[ia] += scale * go[i] }
            }
        }
    }
}

// MARK: - Unary functions

extension Tensor {
    /// Applies `f` elementwise; `derivative(x, y)` gives dy/dx from the input and output values.
    @inline(__always)
    func unary(_ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let n = count
        let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            data.withUnsafeBufferPointer { px in
                let po = buffer.baseAddress!
                Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { po[i] = f(px[i]) } }
            }
            initialized = n
        }
        let x = self
        return Tensor.result(shape: shape, data: out, inputs: [self]) { o in
            let go = o.gradData!, yd = o.data, xd = x.data
            x.accumulateGrad { g in
                let pg = g.baseAddress!
                go.withUnsafeBufferPointer { pgo in
                    xd.withUnsafeBufferPointer { px in
                        yd.withUnsafeBufferPointer { py in
                            Parallel.forRanges(n, grain: elementwiseGrain) { r in
                                for i in r { pg[i] += pgo[i] * derivative(px[i], py[i]) }
                            }
                        }
                    }
                }
            }
        }
    }

    public func exp() -> Tensor { unary({ Foundation.exp($0) }, derivative: { _, y in y }) }
    public func log() -> Tensor { unary({ Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func tanh() -> Tensor { unary({ Foundation.tanh($0) }, derivative: { _, y in 1 - y * y }) }
    public func sqrt() -> Tensor { unary({ Foundation.sqrt($0) }, derivative: { _, y in 0.5 / y }) }
    public func squared() -> Tensor { unary({ $0 * $0 }, derivative: { x, _ in 2 * x }) }
    public func abs() -> Tensor { unary({ Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }) }
    public func sigmoid() -> Tensor { unary({ 1 / (1 + Foundation.exp(-$0)) }, derivative: { _, y in y * (1 - y) }) }
    public func sin() -> Tensor { unary({ Foundation.sin($0) }, derivative: { x, _ in Foundation.cos(x) }) }
    public func cos() -> Tensor { unary({ Foundation.cos($0) }, derivative: { x, _ in -Foundation.sin(x) }) }
    public func relu() -> Tensor { unary({ Swift.max($0, 0) }, derivative: { x, _ in x > 0 ? 1 : 0 }) }

    /// `x^p` elementwise.
    public func pow(_ p: Float) -> Tensor {
        unary({ Foundation.pow($0, p) }, derivative: { x, _ in p * Foundation.pow(x, p - 1) })
    }

    /// Values limited to `[low, high]`; the gradient passes only inside the interval.
    public func clamped(min low: Float, max high: Float) -> Tensor {
        unary({ Swift.min(Swift.max($0, low), high) }, derivative: { x, _ in x >= low && x <= high ? 1 : 0 })
    }
}

// MARK: - Comparisons and selection (no gradient through the mask)

extension Tensor {
    private func compare(_ other: Tensor, _ predicate: (Float, Float) -> Bool) -> Tensor {
        let (shape, out) = broadcastMap(self, other) { predicate($0, $1) ? 1 : 0 }
        return Tensor(shape: shape, data: out)
    }

    /// 1 where `self > other`, else 0.
    public func greater(_ other: Tensor) -> Tensor { compare(other, >) }
    /// 1 where `self < other`, else 0.
    public func less(_ other: Tensor) -> Tensor { compare(other, <) }
    /// 1 where `self == other`, else 0.
    public func equal(_ other: Tensor) -> Tensor { compare(other, ==) }
    /// 1 where `self > value`, else 0.
    public func greater(_ value: Float) -> Tensor { compare(Tensor(scalar: value), >) }
    /// 1 where `self < value`, else 0.
    public func less(_ value: Float) -> Tensor { compare(Tensor(scalar: value), <) }

    /// Elementwise choice: `a` where `condition` is non-zero, else `b` (broadcast). Gradients flow to
    /// the chosen side.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let mask = condition * Tensor.ones(broadcastShape(a.shape, b.shape))
        return mask * a + (1 - mask) * b
    }
}
