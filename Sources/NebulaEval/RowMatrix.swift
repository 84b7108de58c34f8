import NebulaTensor

/// A dense row-major Float matrix: the feature vectors of MAUVE, one per row, in one buffer that BLAS
/// can use.
struct RowMatrix {
    var values: [Float]
    let rows: Int
    let columns: Int

    init(rows: Int, columns: Int, values: [Float]? = nil) {
        self.rows = rows
        self.columns = columns
        self.values = values ?? [Float](repeating: 0, count: rows * columns)
        precondition(self.values.count == rows * columns, "RowMatrix: \(self.values.count) values for \(rows) × \(columns)")
    }

    /// Stacks vectors of equal length as rows.
    init(stacking vectors: [[Float]]) {
        let columns = vectors.first?.count ?? 0
        precondition(vectors.allSatisfy { $0.count == columns }, "RowMatrix: vectors of different lengths")
        self.init(rows: vectors.count, columns: columns, values: vectors.flatMap { $0 })
    }

    func row(_ i: Int) -> ArraySlice<Float> { values[(i * columns)..<((i + 1) * columns)] }

    /// `self · otherᵀ` (rows × other.rows), or `selfᵀ · other` (columns × other.columns) with
    /// `transposingSelf`, through BLAS on all cores.
    func times(_ other: RowMatrix, transposingOther: Bool = false, transposingSelf: Bool = false) -> RowMatrix {
        let m = transposingSelf ? columns : rows
        let k = transposingSelf ? rows : columns
        let n = transposingOther ? other.rows : other.columns
        precondition(k == (transposingOther ? other.columns : other.rows), "RowMatrix: inner dimensions differ")
        var product = RowMatrix(rows: m, columns: n)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                product.values.withUnsafeMutableBufferPointer { c in
                    sgemm(
                        transposeA: transposingSelf, transposeB: transposingOther, m: m, n: n, k: k,
                        a: a.baseAddress!, lda: columns, b: b.baseAddress!, ldb: other.columns,
                        c: c.baseAddress!, ldc: n, parallel: true)
                }
            }
        }
        return product
    }

    /// Squared Euclidean norm of every row.
    var squaredRowNorms: [Float] {
        (0..<rows).map { i in row(i).reduce(0) { $0 + $1 * $1 } }
    }

    /// Scales every row to unit Euclidean length (zero rows stay zero), as scikit-learn's `normalize`.
    mutating func normalizeRows() {
        for i in 0..<rows {
            let norm = row(i).reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { continue }
            for j in 0..<columns { values[i * columns + j] /= norm }
        }
    }
}
