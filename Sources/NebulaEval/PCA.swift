import NebulaTensor

/// Principal component analysis of a set of vectors, as scikit-learn's `PCA` without whitening: the
/// data are centred and projected onto the eigenvectors of their covariance, largest variance first.
/// MAUVE uses it to keep the fewest directions that explain a given share of the variance.
///
/// ```swift
/// let pca = PCA(fitting: features)                       // [[Float]], one vector per text
/// let k = pca.dimensions(explaining: 0.9)
/// let reduced = pca.project(features, dimensions: k)     // [[Float]] of length k
/// ```
public struct PCA: Sendable {
    /// The mean that is subtracted before projecting.
    public let mean: [Float]
    /// Share of the total variance along each principal direction, largest first (sums to 1).
    public let explainedVarianceRatios: [Double]
    /// Unit principal directions as rows, in the order of `explainedVarianceRatios`.
    let components: [Float]
    let dimension: Int

    public init(fitting vectors: [[Float]]) {
        self.init(fitting: RowMatrix(stacking: vectors))
    }

    init(fitting data: RowMatrix) {
        precondition(data.rows > 1, "PCA: need at least two vectors")
        let d = data.columns
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<data.rows { for (j, x) in data.row(i).enumerated() { mean[j] += Double(x) } }
        mean = mean.map { $0 / Double(data.rows) }
        let centred = Self.centre(data, on: mean.map { Float($0) })
        let covariance = centred.times(centred, transposingSelf: true)  // d × d, scaled by n − 1
        let eigen = SymmetricEigen(matrix: covariance.values.map { Double($0) }, size: d)
        let variances = eigen.values.map { max($0, 0) }
        let total = variances.reduce(0, +)
        self.mean = mean.map { Float($0) }
        explainedVarianceRatios = variances.map { total > 0 ? $0 / total : 0 }
        components = eigen.vectors.map { Float($0) }
        dimension = d
    }

    /// The fewest leading directions whose variance shares add up to at least `share` (0–1).
    public func dimensions(explaining share: Double) -> Int {
        var sum = 0.0
        for (i, ratio) in explainedVarianceRatios.enumerated() {
            sum += ratio
            if sum >= share { return i + 1 }
        }
        return explainedVarianceRatios.count
    }

    /// The vectors' coordinates along the first `dimensions` principal directions.
    public func project(_ vectors: [[Float]], dimensions: Int) -> [[Float]] {
        let projected = project(RowMatrix(stacking: vectors), dimensions: dimensions)
        return (0..<projected.rows).map { Array(projected.row($0)) }
    }

    func project(_ data: RowMatrix, dimensions k: Int) -> RowMatrix {
        precondition(
            data.columns == dimension && (1...dimension).contains(k),
            "PCA: project \(data.columns)-d vectors onto \(k) of \(dimension) directions")
        let directions = RowMatrix(rows: k, columns: dimension, values: Array(components[..<(k * dimension)]))
        return Self.centre(data, on: mean).times(directions, transposingOther: true)
    }

    private static func centre(_ data: RowMatrix, on mean: [Float]) -> RowMatrix {
        var centred = data
        for i in 0..<data.rows {
            for j in 0..<data.columns { centred.values[i * data.columns + j] -= mean[j] }
        }
        return centred
    }
}
