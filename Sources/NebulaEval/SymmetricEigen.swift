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
struct SymmetricEigen {
    /// Eigenvalues, largest first.
    let values: [Double]
    /// Row-major `size × size`; row i is the unit eigenvector of `values[i]`.
    let vectors: [Double]
    let size: Int

    init(matrix: [Double], size n: Int) {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) entries for a \(n) × \(n) matrix")
        var v = matrix, d = [Double](repeating: 0, count: n), e = d
        if n > 0 {
            Self.tridiagonalize(&v, &d, &e, n)
            Self.diagonalize(&v, &d, &e, n)
        }
        // `v` holds the eigenvectors as columns; hand them out as rows, largest eigenvalue first.
        let order = d.indices.sorted { d[$0] > d[$1] }
        values = order.map { d[$0] }
        var rows = [Double](repeating: 0, count: n * n)
        for (row, column) in order.enumerated() {
            for k in 0..<n { rows[row * n + k] = v[k * n + column] }
        }
        vectors = rows
        size = n
    }

    func vector(_ i: Int) -> ArraySlice<Double> { vectors[(i * size)..<((i + 1) * size)] }

    /// Householder reduction: on return `d` is the diagonal, `e[1...]` the subdiagonal of the
    /// tridiagonal matrix, and `v` the orthogonal transformation that produced it.
    private static func tridiagonalize(_ v: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) {
        for j in 0..<n { d[j] = v[(n - 1) * n + j] }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let scale = d[..<i].reduce(0) { $0 + abs($1) }
            var h = 0.0
            if scale == 0 {
                e[i] = d[i - 1]
                for j in 0..<i {
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                    v[j * n + i] = 0
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
                    v[j * n + i] = f
                    g = e[j] + v[j * n + j] * f
                    for k in (j + 1)..<i {
                        g += v[k * n + j] * d[k]
                        e[k] += v[k * n + j] * f
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
                    for k in j..<i { v[k * n + j] -= f * e[k] + g * d[k] }
                    d[j] = v[(i - 1) * n + j]
                    v[i * n + j] = 0
                }
            }
            d[i] = h
        }
        // Accumulate the transformations.
        for i in 0..<(n - 1) {
            v[(n - 1) * n + i] = v[i * n + i]
            v[i * n + i] = 1
            let h = d[i + 1]
            if h != 0 {
                for k in 0...i { d[k] = v[k * n + i + 1] / h }
                for j in 0...i {
                    var g = 0.0
                    for k in 0...i { g += v[k * n + i + 1] * v[k * n + j] }
                    for k in 0...i { v[k * n + j] -= g * d[k] }
                }
            }
            for k in 0...i { v[k * n + i + 1] = 0 }
        }
        for j in 0..<n { d[j] = v[(n - 1) * n + j]; v[(n - 1) * n + j] = 0 }
        v[(n - 1) * n + n - 1] = 1
        e[0] = 0
    }

    /// Implicit QL with Wilkinson-style shifts on the tridiagonal matrix: `d` becomes the eigenvalues
    /// and the columns of `v` the eigenvectors.
    private static func diagonalize(_ v: inout [Double], _ d: inout [Double], _ e: inout [Double], _ n: Int) {
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
                        for k in 0..<n {
                            let a = v[k * n + i], b = v[k * n + i + 1]
                            v[k * n + i + 1] = s * a + c * b
                            v[k * n + i] = c * a - s * b
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
