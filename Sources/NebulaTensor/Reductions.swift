// Reductions over one axis or over all elements: sum, mean, max, argmax, variance.

extension Tensor {
    /// Views the shape around `axis` as `[outer, length, inner]`.
    private func split(at axis: Int) -> (outer: Int, length: Int, inner: Int) {
        let a = normalizeAxis(axis, rank: rank)
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    private func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        let a = normalizeAxis(axis, rank: rank)
        var s = shape
        if keepDims { s[a] = 1 } else { s.remove(at: a) }
        return s
    }

    /// Sum of all elements (a scalar tensor).
    public func sum() -> Tensor {
        var total: Double = 0
        data.withUnsafeBufferPointer { p in for v in p { total += Double(v) } }
        let n = count
        return Tensor.result(shape: [], data: [Float(total)], inputs: [self]) { [self] o in
            let g = o.gradData![0]
            accumulateGrad { pg in for i in 0..<n { pg[i] += g } }
        }
    }

    /// Mean of all elements (a scalar tensor).
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum along `axis`.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, length, inner) = split(at: axis)
        var out = [Float](repeating: 0, count: outer * inner)
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for o in 0..<outer {
                    for l in 0..<length {
                        let src = (o * length + l) * inner, dst = o * inner
                        for i in 0..<inner { po[dst + i] += px[src + i] }
                    }
                }
            }
        }
        return Tensor.result(shape: reducedShape(axis, keepDims: keepDims), data: out, inputs: [self]) { [self] o in
            let go = o.gradData!
            accumulateGrad { pg in
                for o in 0..<outer {
                    for l in 0..<length {
                        let dst = (o * length + l) * inner, src = o * inner
                        for i in 0..<inner { pg[dst + i] += go[src + i] }
                    }
                }
            }
        }
    }

    /// Mean along `axis`.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
        sum(axis: axis, keepDims: keepDims) * (1 / Float(shape[normalizeAxis(axis, rank: rank)]))
    }

    /// Population variance along `axis` (divides by n, as layer norm does).
    public func variance(axis: Int, keepDims: Bool = false) -> Tensor {
        let centered = self - mean(axis: axis, keepDims: true)
        return centered.squared().mean(axis: axis, keepDims: keepDims)
    }

    /// Maximum along `axis`; the gradient goes to the (first) maximal element.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, length, inner) = split(at: axis)
        let indices = argmaxIndices(outer, length, inner)
        var out = [Float](repeating: 0, count: outer * inner)
        for o in 0..<outer { for i in 0..<inner { out[o * inner + i] = data[(o * length + indices[o * inner + i]) * inner + i] } }
        return Tensor.result(shape: reducedShape(axis, keepDims: keepDims), data: out, inputs: [self]) { [self] o in
            let go = o.gradData!
            accumulateGrad { pg in
                for o in 0..<outer {
                    for i in 0..<inner {
                        pg[(o * length + indices[o * inner + i]) * inner + i] += go[o * inner + i]
                    }
                }
            }
        }
    }

    /// Index of the maximum along `axis` (no gradient).
    public func argmax(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, length, inner) = split(at: axis)
        return Tensor(shape: reducedShape(axis, keepDims: keepDims), data: argmaxIndices(outer, length, inner).map(Float.init))
    }

    private func argmaxIndices(_ outer: Int, _ length: Int, _ inner: Int) -> [Int] {
        precondition(length > 0, "max/argmax over an empty axis")
        var result = [Int](repeating: 0, count: outer * inner)
        data.withUnsafeBufferPointer { px in
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = 0
                    var bestValue = px[o * length * inner + i]
                    for l in 1..<Swift.max(length, 1) where px[(o * length + l) * inner + i] > bestValue {
                        best = l
                        bestValue = px[(o * length + l) * inner + i]
                    }
                    result[o * inner + i] = best
                }
            }
        }
        return result
    }
}

/// `Σ x²` over a buffer: eight lanes at a time, chunks on the workers, accumulated in Double across chunks.
public func sumOfSquares(_ values: UnsafeBufferPointer<Float>) -> Double {
    guard let base = values.baseAddress, values.count > 0 else { return 0 }
    let chunk = 1 << 16
    let chunks = (values.count + chunk - 1) / chunk
    var partials = [Double](repeating: 0, count: chunks)
    partials.withUnsafeMutableBufferPointer { partials in
        let partials = partials
        Parallel.forRanges(chunks, grain: 4) { range in
            for c in range {
                let start = c * chunk
                let p = base + start
                partials[c] = Double(dot(p, p, Swift.min(chunk, values.count - start)))
            }
        }
    }
    return partials.reduce(0, +)
}
