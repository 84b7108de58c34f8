// Shape operations: reshape, permute/transpose, slice, split, concatenate, stack, gather and scatter-add.

extension Tensor {
    /// The same values with a new shape of equal element count; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshaped: cannot infer -1 in \(newShape) for \(count) elements")
            resolved[inferred] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "reshaped: shape \(shape) (\(count) elements) cannot become \(newShape)")
        let input = self
        return Tensor.result(shape: resolved, data: data, inputs: [self]) { o in
            let go = o.gradData!
            input.accumulateGrad { pg in for i in 0..<go.count { pg[i] += go[i] } }
        }
    }

    /// Dimensions reordered: output dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permuted: \(order) is not a permutation of 0..<\(rank)")
        let outShape = order.map { shape[$0] }
        let inStrides = contiguousStrides(shape)
        let readStrides = order.map { inStrides[$0] }
        var out = [Float](repeating: 0, count: count)
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                forEachBroadcastOffset(outShape, readStrides, readStrides) { i, src, _ in po[i] = px[src] }
            }
        }
        let input = self
        return Tensor.result(shape: outShape, data: out, inputs: [self]) { o in
            let go = o.gradData!
            input.accumulateGrad { pg in
                forEachBroadcastOffset(outShape, readStrides, readStrides) { i, src, _ in pg[src] += go[i] }
            }
        }
    }

    /// Two dimensions swapped (by default the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalizeAxis(a, rank: rank), normalizeAxis(b, rank: rank))
        return permuted(order)
    }

    /// The sub-range `range` of dimension `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[a],
            "slice: range \(range) is outside 0..<\(shape[a]) on axis \(axis) of shape \(shape)")
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *), length = shape[a]
        let width = range.count * inner, start = range.lowerBound * inner
        var outShape = shape
        outShape[a] = range.count
        var out = [Float](repeating: 0, count: outer * width)
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for o in 0..<outer {
                    let src = o * length * inner + start
                    for j in 0..<width { po[o * width + j] = px[src + j] }
                }
            }
        }
        let input = self
        return Tensor.result(shape: outShape, data: out, inputs: [self]) { o in
            let go = o.gradData!
            input.accumulateGrad { pg in
                for o in 0..<outer {
                    let dst = o * length * inner + start
                    for j in 0..<width { pg[dst + j] += go[o * width + j] }
                }
            }
        }
    }

    /// Splits `axis` into pieces of the given sizes (e.g. a fused q|k|v projection into three).
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        precondition(sizes.reduce(0, +) == size(axis), "split: sizes \(sizes) do not add up to \(size(axis)) on axis \(axis)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(axis: axis, start..<(start + n))
        }
    }

    /// Joins tensors along an existing dimension; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let a = normalizeAxis(axis, rank: first.rank)
        for t in tensors {
            precondition(
                t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                "concatenate: shape \(t.shape) does not match \(first.shape) outside axis \(axis)")
        }
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        let widths = tensors.map { $0.shape[a] * inner }
        let total = widths.reduce(0, +)
        var outShape = first.shape
        outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
        var out = [Float](repeating: 0, count: outer * total)
        var offset = 0
        for (t, w) in zip(tensors, widths) {
            t.data.withUnsafeBufferPointer { px in
                for o in 0..<outer { for j in 0..<w { out[o * total + offset + j] = px[o * w + j] } }
            }
            offset += w
        }
        return Tensor.result(shape: outShape, data: out, inputs: tensors) { o in
            let go = o.gradData!
            var offset = 0
            for (t, w) in zip(tensors, widths) {
                let base = offset
                t.accumulateGrad { pg in for o in 0..<outer { for j in 0..<w { pg[o * w + j] += go[o * total + base + j] } } }
                offset += w
            }
        }
    }

    /// Joins equally shaped tensors along a new dimension.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors")
        let rank = tensors[0].rank
        let a = axis < 0 ? axis + rank + 1 : axis
        let expanded = tensors.map { t -> Tensor in
            precondition(t.shape == tensors[0].shape, "stack: shape \(t.shape) differs from \(tensors[0].shape)")
            var s = t.shape
            s.insert(1, at: a)
            return t.reshaped(s)
        }
        return concatenate(expanded, axis: a)
    }

    /// The slices `self[i]` for each of `indices`, along the first axis of a tensor of any rank: `[N, …]` → `[indices.count, …]`
    /// (a batch of latents picked from a set). Gradients flow back as ``gatherRows(_:indexShape:)``'s.
    public func rows(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "rows: a scalar has no rows")
        let rest = Array(shape.dropFirst())
        let flat = reshaped([shape[0], rest.reduce(1, *)])  // [N, ∏ rest]
        return flat.gatherRows(indices.map(Int32.init)).reshaped([indices.count] + rest)
    }

    /// Rows of a `[N, C]` table picked by integer `indices` (an embedding lookup): the result has shape
    /// `indexShape + [C]`. The backward pass scatter-adds into the picked rows.
    public func gatherRows(_ indices: [Int32], indexShape: [Int]? = nil) -> Tensor {
        precondition(rank == 2, "gatherRows: the table must be 2-D, got shape \(shape)")
        let rows = shape[0], width = shape[1]
        for (position, index) in indices.enumerated() where index < 0 || Int(index) >= rows {
            preconditionFailure("gatherRows: index \(index) at position \(position) is outside 0..<\(rows)")
        }
        let n = indices.count
        var out = [Float](repeating: 0, count: n * width)
        data.withUnsafeBufferPointer { pt in
            out.withUnsafeMutableBufferPointer { po in
                for (k, index) in indices.enumerated() {
                    let src = Int(index) * width
                    for j in 0..<width { po[k * width + j] = pt[src + j] }
                }
            }
        }
        let table = self
        return Tensor.result(shape: (indexShape ?? [n]) + [width], data: out, inputs: [self]) { o in
            let go = o.gradData!
            table.accumulateGrad { pg in addRows(go, indices: indices, width: width, into: pg) }
        }
    }

    /// A `[rows, C]` tensor that sums rows of `self` (`[N, C]`) into the rows named by `indices`.
    public func scatterAddRows(indices: [Int32], rows: Int) -> Tensor {
        precondition(rank == 2 && shape[0] == indices.count, "scatterAddRows: need [\(indices.count), C], got \(shape)")
        let width = shape[1]
        var out = [Float](repeating: 0, count: rows * width)
        out.withUnsafeMutableBufferPointer { po in addRows(data, indices: indices, width: width, into: po) }
        let source = self
        return Tensor.result(shape: [rows, width], data: out, inputs: [self]) { o in
            let go = o.gradData!
            source.accumulateGrad { pg in
                for (k, index) in indices.enumerated() { for j in 0..<width { pg[k * width + j] += go[Int(index) * width + j] } }
            }
        }
    }
}

private func addRows(_ values: [Float], indices: [Int32], width: Int, into target: UnsafeMutableBufferPointer<Float>) {
    values.withUnsafeBufferPointer { pv in
        for (k, index) in indices.enumerated() {
            let dst = Int(index) * width
            for j in 0..<width { target[dst + j] += pv[k * width + j] }
        }
    }
}
