/// Shape arithmetic shared by the ops.

/// Resolves a possibly negative axis against a rank, with a clear failure.
@inline(__always)
func normalizeAxis(_ axis: Int, rank: Int) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < max(rank, 1), "axis \(axis) is out of range for a tensor of rank \(rank)")
    return a
}

/// Row-major strides of a shape.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}

/// The NumPy broadcast of two shapes, or a precondition failure naming both.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) cannot be broadcast together")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides to read a tensor of `shape` as if it had `target` shape (0 on broadcast dimensions).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = target.count - shape.count
    return (0..<target.count).map { i in
        i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
    }
}

/// Whether `small` repeats along the leading dimensions of `big` (its shape is a suffix of big's, after
/// dropping leading ones), so `big[i]` pairs with `small[i % small.count]`.
func isSuffixBroadcast(_ small: [Int], of big: [Int]) -> Bool {
    var s = small[...]
    while let first = s.first, first == 1, s.count > 0 { s = s.dropFirst() }
    guard s.count <= big.count else { return false }
    return Array(big.suffix(s.count)) == Array(s)
}

/// Visits every multi-index of `shape` in row-major order, yielding the linear offsets into two
/// operands read with the given strides. The last dimension runs as a plain inner loop; the outer
/// multi-index advances once per row.
@inline(__always)
func forEachBroadcastOffset(_ shape: [Int], _ stridesA: [Int], _ stridesB: [Int], _ body: (Int, Int, Int) -> Void) {
    let rank = shape.count
    let total = shape.reduce(1, *)
    if total == 0 { return }
    if rank == 0 { body(0, 0, 0); return }
    let inner = shape[rank - 1], innerA = stridesA[rank - 1], innerB = stridesB[rank - 1]
    var index = [Int](repeating: 0, count: rank)
    var offA = 0, offB = 0, linear = 0
    for _ in 0..<(total / inner) {
        for j in 0..<inner { body(linear + j, offA + j * innerA, offB + j * innerB) }
        linear += inner
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            offA += stridesA[d]
            offB += stridesB[d]
            if index[d] < shape[d] { break }
            offA -= stridesA[d] * shape[d]
            offB -= stridesB[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }
}
