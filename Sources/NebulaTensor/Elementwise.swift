import Foundation

// Elementwise arithmetic with NumPy broadcasting, unary math functions, comparisons and `where`.

/// Elementwise loops parallelize above this many elements (below it, thread start-up costs more).
let elementwiseGrain = 1 << 15

// MARK: - Kernels

// Each elementwise op is a small kernel type. The loops below are generic over it, so the compiler
// specializes them per op and the per-element function inlines and vectorizes (a closure would cost an
// indirect call per element, about 25 times slower).

/// A binary elementwise function with its partial derivatives.
protocol BinaryKernel {
    func forward(_ a: Float, _ b: Float) -> Float
    func gradA(_ a: Float, _ b: Float) -> Float
    func gradB(_ a: Float, _ b: Float) -> Float
}

struct AddKernel: BinaryKernel {
    func forward(_ a: Float, _ b: Float) -> Float { a + b }
    func gradA(_ a: Float, _ b: Float) -> Float { 1 }
    func gradB(_ a: Float, _ b: Float) -> Float { 1 }
}
struct SubtractKernel: BinaryKernel {
    func forward(_ a: Float, _ b: Float) -> Float { a - b }
    func gradA(_ a: Float, _ b: Float) -> Float { 1 }
    func gradB(_ a: Float, _ b: Float) -> Float { -1 }
}
struct MultiplyKernel: BinaryKernel {
    func forward(_ a: Float, _ b: Float) -> Float { a * b }
    func gradA(_ a: Float, _ b: Float) -> Float { b }
    func gradB(_ a: Float, _ b: Float) -> Float { a }
}
struct DivideKernel: BinaryKernel {
    func forward(_ a: Float, _ b: Float) -> Float { a / b }
    func gradA(_ a: Float, _ b: Float) -> Float { 1 / b }
    func gradB(_ a: Float, _ b: Float) -> Float { -a / (b * b) }
}
/// Comparisons (no gradient).
struct CompareKernel: BinaryKernel {
    let predicate: (Float, Float) -> Bool
    func forward(_ a: Float, _ b: Float) -> Float { predicate(a, b) ? 1 : 0 }
    func gradA(_ a: Float, _ b: Float) -> Float { 0 }
    func gradB(_ a: Float, _ b: Float) -> Float { 0 }
}

/// A unary elementwise function; `derivative(x, y)` gives dy/dx from input and output.
protocol UnaryKernel {
    func forward(_ x: Float) -> Float
    func derivative(_ x: Float, _ y: Float) -> Float
}

struct ExpKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Foundation.exp(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { y }
}
struct LogKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Foundation.log(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { 1 / x }
}
struct TanhKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { fastTanh(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { 1 - y * y }
}
struct SqrtKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { x.squareRoot() }
    func derivative(_ x: Float, _ y: Float) -> Float { 0.5 / y }
}
struct SquareKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { x * x }
    func derivative(_ x: Float, _ y: Float) -> Float { 2 * x }
}
struct AbsKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Swift.abs(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
struct SigmoidKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    func derivative(_ x: Float, _ y: Float) -> Float { y * (1 - y) }
}
/// GELU in its exact form, `x·Φ(x)` with the normal CDF `Φ(x) = ½(1 + erf(x/√2))` (BERT's); derivative `Φ(x) + x·φ(x)`.
struct ExactGELUKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { 0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752)) }
    func derivative(_ x: Float, _ y: Float) -> Float {
        0.5 * (1 + Foundation.erf(x * 0.70710678118654752)) + x * 0.3989422804014327 * Foundation.exp(-0.5 * x * x)
    }
}
struct SinKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Foundation.sin(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { Foundation.cos(x) }
}
struct CosKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Foundation.cos(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { -Foundation.sin(x) }
}
struct ReluKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { Swift.max(x, 0) }
    func derivative(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : 0 }
}
struct SiluKernel: UnaryKernel {
    func forward(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }
    func derivative(_ x: Float, _ y: Float) -> Float {
        let s = 1 / (1 + Foundation.exp(-x))
        return s * (1 + x * (1 - s))
    }
}
struct AffineKernel: UnaryKernel {
    let scale: Float, shift: Float
    func forward(_ x: Float) -> Float { x * scale + shift }
    func derivative(_ x: Float, _ y: Float) -> Float { scale }
}
struct PowKernel: UnaryKernel {
    let p: Float
    func forward(_ x: Float) -> Float { Foundation.pow(x, p) }
    func derivative(_ x: Float, _ y: Float) -> Float { p * Foundation.pow(x, p - 1) }
}
struct ClampKernel: UnaryKernel {
    let low: Float, high: Float
    func forward(_ x: Float) -> Float { Swift.min(Swift.max(x, low), high) }
    func derivative(_ x: Float, _ y: Float) -> Float { x >= low && x <= high ? 1 : 0 }
}

// MARK: - Broadcasting machinery

/// Applies `kernel` elementwise over the broadcast of `a` and `b`, with fast paths for equal shapes and
/// for an operand that repeats along leading dimensions (bias, positions, scalars).
private func broadcastMap<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ kernel: K) -> ([Int], [Float]) {
    let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
    let n = outShape.reduce(1, *)
    let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                let (pa, pb, po) = (pa.baseAddress!, pb.baseAddress!, buffer.baseAddress!)
                if a.count == n && b.count == n {
                    Parallel.forRanges(n, grain: elementwiseGrain) { r in
                        for i in r { po[i] = kernel.forward(pa[i], pb[i]) }
                    }
                } else if a.count == n && isSuffixBroadcast(b.shape, of: outShape) {
                    let m = b.count
                    Parallel.forRanges(n / m, grain: max(1, elementwiseGrain / m)) { rows in
                        for row in rows {
                            let (o, x) = (po + row * m, pa + row * m)
                            for j in 0..<m { o[j] = kernel.forward(x[j], pb[j]) }
                        }
                    }
                } else if b.count == n && isSuffixBroadcast(a.shape, of: outShape) {
                    let m = a.count
                    Parallel.forRanges(n / m, grain: max(1, elementwiseGrain / m)) { rows in
                        for row in rows {
                            let (o, y) = (po + row * m, pb + row * m)
                            for j in 0..<m { o[j] = kernel.forward(pa[j], y[j]) }
                        }
                    }
                } else {
                    let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
                    forEachBroadcastOffset(outShape, sa, sb) { i, ia, ib in po[i] = kernel.forward(pa[ia], pb[ib]) }
                }
            }
        }
        initialized = n
    }
    return (outShape, out)
}

/// Accumulates the gradient of a broadcast binary op into `a` and `b`, summing over the dimensions along
/// which each was broadcast.
private func binaryBackward<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ kernel: K, outShape: [Int], grad: [Float]) {
    let n = grad.count
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            grad.withUnsafeBufferPointer { pg in
                let (pa, pb, go) = (pa.baseAddress!, pb.baseAddress!, pg.baseAddress!)
                if a.count == n && b.count == n {
                    a.accumulateGrad { ga in
                        let ga = ga.baseAddress!
                        Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { ga[i] += go[i] * kernel.gradA(pa[i], pb[i]) } }
                    }
                    b.accumulateGrad { gb in
                        let gb = gb.baseAddress!
                        Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { gb[i] += go[i] * kernel.gradB(pa[i], pb[i]) } }
                    }
                } else if a.count == n && isSuffixBroadcast(b.shape, of: outShape) {
                    let m = b.count
                    a.accumulateGrad { ga in
                        let ga = ga.baseAddress!
                        Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { ga[i] += go[i] * kernel.gradA(pa[i], pb[i % m]) }
                        }
                    }
                    b.accumulateGrad { gb in  // rows summed serially: every row writes the same m entries
                        let gb = gb.baseAddress!
                        for row in 0..<(n / m) {
                            let (g, x) = (go + row * m, pa + row * m)
                            for j in 0..<m { gb[j] += g[j] * kernel.gradB(x[j], pb[j]) }
                        }
                    }
                } else {
                    let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
                    a.accumulateGrad { ga in
                        forEachBroadcastOffset(outShape, sa, sb) { i, ia, ib in ga[ia] += go[i] * kernel.gradA(pa[ia], pb[ib]) }
                    }
                    b.accumulateGrad { gb in
                        forEachBroadcastOffset(outShape, sa, sb) { i, ia, ib in gb[ib] += go[i] * kernel.gradB(pa[ia], pb[ib]) }
                    }
                }
            }
        }
    }
}

extension Tensor {
    private static func binary<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ kernel: K) -> Tensor {
        let (shape, out) = broadcastMap(a, b, kernel)
        return result(shape: shape, data: out, inputs: [a, b]) { o in
            binaryBackward(a, b, kernel, outShape: shape, grad: o.gradData!)
        }
    }

    /// Sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(a, b, AddKernel()) }
    /// Difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(a, b, SubtractKernel()) }
    /// Product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(a, b, MultiplyKernel()) }
    /// Quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(a, b, DivideKernel()) }

    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }

    /// `x * scale + shift`, elementwise.
    public func affine(scale: Float, shift: Float) -> Tensor { unary(AffineKernel(scale: scale, shift: shift)) }
}

/// Accumulates `grad` into `input`'s gradient, summing over broadcast dimensions.
func reduceGradToShape(_ grad: [Float], from shape: [Int], into input: Tensor, scale: Float = 1) {
    guard input.requiresGrad else { return }
    let n = grad.count
    input.withGradBuffer { g in
        grad.withUnsafeBufferPointer { go in
            let (pg, go) = (g.baseAddress!, go.baseAddress!)
            if input.count == n {
                Parallel.forRanges(n, grain: elementwiseGrain) { r in for i in r { pg[i] += scale * go[i] } }
            } else if isSuffixBroadcast(input.shape, of: shape) {
                let m = input.count
                for row in 0..<(n / m) {
                    let src = go + row * m
                    for j in 0..<m { pg[j] += scale * src[j] }
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
    /// Applies a kernel elementwise, in parallel, with its backward pass.
    func unary<K: UnaryKernel>(_ kernel: K) -> Tensor {
        let n = count
        let out = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            data.withUnsafeBufferPointer { px in
                let (px, po) = (px.baseAddress!, buffer.baseAddress!)
                Parallel.forRanges(n, grain: elementwiseGrain / 4) { r in for i in r { po[i] = kernel.forward(px[i]) } }
            }
            initialized = n
        }
        let x = self
        return Tensor.result(shape: shape, data: out, inputs: [self]) { o in
            o.gradData!.withUnsafeBufferPointer { pgo in
                x.data.withUnsafeBufferPointer { px in
                    o.data.withUnsafeBufferPointer { py in
                        let (pgo, px, py) = (pgo.baseAddress!, px.baseAddress!, py.baseAddress!)
                        x.accumulateGrad { pg in
                            let pg = pg.baseAddress!
                            Parallel.forRanges(n, grain: elementwiseGrain / 4) { r in
                                for i in r { pg[i] += pgo[i] * kernel.derivative(px[i], py[i]) }
                            }
                        }
                    }
                }
            }
        }
    }

    public func exp() -> Tensor { unary(ExpKernel()) }
    public func log() -> Tensor { unary(LogKernel()) }
    public func tanh() -> Tensor { unary(TanhKernel()) }
    public func sqrt() -> Tensor { unary(SqrtKernel()) }
    public func squared() -> Tensor { unary(SquareKernel()) }
    public func abs() -> Tensor { unary(AbsKernel()) }
    public func sigmoid() -> Tensor { unary(SigmoidKernel()) }
    public func sin() -> Tensor { unary(SinKernel()) }
    /// GELU in its exact (erf) form, `x·Φ(x)`: BERT's activation (``gelu()`` is GPT-2's tanh approximation).
    public func exactGELU() -> Tensor { unary(ExactGELUKernel()) }
    public func cos() -> Tensor { unary(CosKernel()) }
    public func relu() -> Tensor { unary(ReluKernel()) }
    /// GELU, tanh approximation (GPT-2's): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. The tanh of every
    /// element is kept for the backward pass when gradients are recorded, so it is computed once.
    public func gelu() -> Tensor {
        let (n, c, a) = (count, Float(0.7978845608028654), Float(0.044715))  // c = √(2/π)
        let keep = GradMode.isEnabled && requiresGrad
        var tanhs = [Float](unsafeUninitializedCapacity: keep ? n : 0) { _, initialized in initialized = keep ? n : 0 }
        var out = [Float](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                tanhs.withUnsafeMutableBufferPointer { pt in
                    let (px, po, pt) = (px.baseAddress!, po.baseAddress!, pt.baseAddress)  // pt: only when keep
                    Parallel.forRanges(n, grain: elementwiseGrain / 4) { r in
                        if keep, let pt {
                            for i in r {
                                let x = px[i], t = fastTanh(c * (x + a * x * x * x))
                                po[i] = 0.5 * x * (1 + t)
                                pt[i] = t
                            }
                        } else {
                            for i in r { let x = px[i]; po[i] = 0.5 * x * (1 + fastTanh(c * (x + a * x * x * x))) }
                        }
                    }
                }
            }
        }
        let x = self
        return Tensor.result(shape: shape, data: out, inputs: [self]) { o in
            o.gradData!.withUnsafeBufferPointer { pgo in
                x.data.withUnsafeBufferPointer { px in
                    tanhs.withUnsafeBufferPointer { pt in
                        let (pgo, px, pt) = (pgo.baseAddress!, px.baseAddress!, pt.baseAddress!)
                        x.accumulateGrad { pg in
                            let pg = pg.baseAddress!
                            Parallel.forRanges(n, grain: elementwiseGrain / 4) { r in
                                for i in r {
                                    let (x, t) = (px[i], pt[i])
                                    pg[i] += pgo[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    /// SiLU (swish): `x·σ(x)`.
    public func silu() -> Tensor { unary(SiluKernel()) }

    /// `x^p` elementwise.
    public func pow(_ p: Float) -> Tensor { unary(PowKernel(p: p)) }

    /// Values limited to `[low, high]`; the gradient passes only inside the interval.
    public func clamped(min low: Float, max high: Float) -> Tensor { unary(ClampKernel(low: low, high: high)) }
}

// MARK: - Comparisons and selection (no gradient through the mask)

extension Tensor {
    private func compare(_ other: Tensor, _ predicate: @escaping (Float, Float) -> Bool) -> Tensor {
        let (shape, out) = broadcastMap(self, other, CompareKernel(predicate: predicate))
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
