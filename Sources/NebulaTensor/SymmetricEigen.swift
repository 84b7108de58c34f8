import Foundation

/// Eigenvalues and eigenvectors of a real symmetric matrix, in Double: Householder reduction to
/// tridiagonal form, then the implicit QL algorithm (the EISPACK routines `tred2` and `tql2`, as in
/// Golub & Van Loan §8.3). O(n³); a 384 × 384 covariance takes a fraction of a second.
///
/// ```swift
/// let e = SymmetricEigen(matrix: [2, 1, 1, 2], size: 2)
/// e.values                 // [3, 1], largest first
/// e.vector(0)              // ±[0.707, 0.707]
/// ```
public struct SymmetricEigen: Sendable {
    /// Eigenvalues, largest first.
    public let values: [Double]
    /// Row-major `size × size`; row i is the unit eigenvector of `values[i]`.
    public let vectors: [Double]
    /// The matrix's order n.
    public let size: Int

    /// Decomposes the symmetric `size × size` matrix given row-major (only its symmetry is assumed, not checked).
    public init(matrix: [Double], size n: Int) {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) entries for a \(n) × \(n) matrix")
        var v = matrix, d = [Double](repeating: 0, count: n), e = d
        if n > 0 {
            Self.tridiagonalize(&v, &d, &e, n)
            Self.diagonalize(&v, &d, &e, n)
        }
        // Row i of `v` is now the eigenvector of d[i]; hand them out largest eigenvalue first.
        let order = d.indices.sorted { d[$0] > d[$1] }
        values = order.map { d[$0] }
        vectors = order.flatMap { v[($0 * n)..<(($0 + 1) * n)] }
        size = n
    }

    /// The unit eigenvector of `values[i]`.
    public func vector(_ i: Int) -> ArraySlice<Double> { vectors[(i * size)..<((i + 1) * size)] }

    /// Householder reduction (EISPACK `tred2`): on return `d` is the diagonal, `e[1...]` the subdiagonal
    /// of the tridiagonal matrix, and `w` the transpose of the orthogonal transformation that produced
    /// it. The input is symmetric, so working on the transpose throughout reads and writes rows, which
    /// keeps the O(n³) loops in cache.
    private static func tridiagonalize(_ w: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) {
        w.withUnsafeMutableBufferPointer { w in
            for j in 0..<n { d[j] = w[j * n + n - 1] }
            for i in stride(from: n - 1, to: 0, by: -1) {
                let scale = d[..<i].reduce(0) { $0 + abs($1) }
                var h = 0.0
                if scale == 0 {
                    e[i] = d[i - 1]
                    for j in 0..<i {
                        d[j] = w[j * n + i - 1]
                        w[j * n + i] = 0
                        w[i * n + j] = 0
                    }
                } else {
                    // The Householder vector, scaled against under- and overflow.
                    for k in 0..<i { d[k] /= scale; h += d[k] * d[k] }
                    var f = d[i - 1]
                    var g = f > 0 ? -sqrt(h) : sqrt(h)
                    e[i] = scale * g
                    h -= f * g
                    d[i - 1] = f - g
                    for j in 0..<i { e[j] = 0 }
                    // Apply the similarity transformation to the remaining columns.
                    for j in 0..<i {
                        f = d[j]
                        w[i * n + j] = f
                        g = e[j] + w[j * n + j] * f
                        for k in (j + 1)..<i {
                            g += w[j * n + k] * d[k]
                            e[k] += w[j * n + k] * f
                        }
                        e[j] = g
                    }
                    f = 0
                    for j in 0..<i { e[j] /= h; f += e[j] * d[j] }
                    let hh = f / (h + h)
                    for j in 0..<i { e[j] -= hh * d[j] }
                    for j in 0..<i {
                        f = d[j]
                        g = e[j]
                        for k in j..<i { w[j * n + k] -= f * e[k] + g * d[k] }
                        d[j] = w[j * n + i - 1]
                        w[j * n + i] = 0
                    }
                }
                d[i] = h
            }
            // Accumulate the transformations.
            for i in 0..<(n - 1) {
                w[i * n + n - 1] = w[i * n + i]
                w[i * n + i] = 1
                let h = d[i + 1]
                if h != 0 {
                    for k in 0...i { d[k] = w[(i + 1) * n + k] / h }
                    for j in 0...i {
                        var g = 0.0
                        for k in 0...i { g += w[(i + 1) * n + k] * w[j * n + k] }
                        for k in 0...i { w[j * n + k] -= g * d[k] }
                    }
                }
                for k in 0...i { w[(i + 1) * n + k] = 0 }
            }
            for j in 0..<n { d[j] = w[j * n + n - 1]; w[j * n + n - 1] = 0 }
            w[(n - 1) * n + n - 1] = 1
        }
        e[0] = 0
    }

    /// Implicit QL with Wilkinson-style shifts on the tridiagonal matrix: `d` becomes the eigenvalues
    /// and the rows of `w` (the transposed transformation, so each rotation touches two contiguous rows)
    /// the eigenvectors.
    private static func diagonalize(_ w: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) {
        for i in 1..<max(n, 1) { e[i - 1] = e[i] }
        e[n - 1] = 0
        var shift = 0.0, magnitude = 0.0
        let eps = Double.ulpOfOne
        for l in 0..<n {
            magnitude = max(magnitude, abs(d[l]) + abs(e[l]))
            var m = l
            while m < n - 1 && abs(e[m]) > eps * magnitude { m += 1 }
            if m > l {
                repeat {
                    var g = d[l]
                    var p = (d[l + 1] - g) / (2 * e[l])
                    var r = p < 0 ? -hypot(p, 1) : hypot(p, 1)
                    d[l] = e[l] / (p + r)
                    d[l + 1] = e[l] * (p + r)
                    let dl1 = d[l + 1]
                    var h = g - d[l]
                    for i in (l + 2)..<max(n, l + 2) { d[i] -= h }
                    shift += h
                    // One implicit QL sweep, accumulating the rotations into v.
                    p = d[m]
                    var c = 1.0, c2 = 1.0, c3 = 1.0, s = 0.0, s2 = 0.0
                    let el1 = e[l + 1]
                    for i in stride(from: m - 1, through: l, by: -1) {
                        c3 = c2
                        c2 = c
                        s2 = s
                        g = c * e[i]
                        h = c * p
                        r = hypot(p, e[i])
                        e[i + 1] = s * r
                        s = e[i] / r
                        c = p / r
                        p = c * d[i] - s * g
                        d[i + 1] = h + s * (c * g + s * d[i])
                        w.withUnsafeMutableBufferPointer { w in
                            let row = w.baseAddress! + i * n, next = row + n
                            for k in 0..<n {
                                let a = row[k], b = next[k]
                                next[k] = s * a + c * b
                                row[k] = c * a - s * b
                            }
                        }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1
                    e[l] = s * p
                    d[l] = c * p
                } while abs(e[l]) > eps * magnitude
            }
            d[l] += shift
            e[l] = 0
        }
    }
}
