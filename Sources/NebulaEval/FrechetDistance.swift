import NebulaTensor

/// The Fréchet distance between Gaussians fitted to two sets of vectors, as FID computes it for images:
/// `‖μa − μb‖² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½`. On latents it says how close a sampler's latents
/// lie to the encoder's, whatever the decoder then makes of them (0: the same mean and covariance).
///
/// The covariances are the unbiased sample estimates, so with fewer vectors than dimensions the figure
/// is biased upwards: compare sets of the same size, beside two real sets of that size (the noise floor).
///
/// ```swift
/// let fd = frechetDistance(sampled, encoded)     // [[Float]] each, one flattened latent per passage
/// ```
public func frechetDistance(_ a: [[Float]], _ b: [[Float]]) -> Double {
    precondition(a.count > 1 && b.count > 1, "frechetDistance: need at least two vectors a side, got \(a.count) and \(b.count)")
    let n = a[0].count
    precondition((a + b).allSatisfy { $0.count == n }, "frechetDistance: every vector must have \(n) values")
    let (meanA, covarianceA) = gaussianFit(a), (meanB, covarianceB) = gaussianFit(b)
    let meanGap = zip(meanA, meanB).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    let trace = { (m: [Double]) in (0..<n).reduce(0) { $0 + m[$1 * n + $1] } }
    // tr (Σa Σb)^½ = Σ √λ over the eigenvalues λ of the symmetric Σa^½ Σb Σa^½.
    let rootA = symmetricFunction(covarianceA, size: n) { $0.squareRoot() }
    let product = multiply(multiply(rootA, covarianceB, n), rootA, n)
    let symmetric = (0..<(n * n)).map { k in (product[k] + product[(k % n) * n + k / n]) / 2 }  // round-off asymmetry out
    let crossTrace = SymmetricEigen(matrix: symmetric, size: n).values.reduce(0) { $0 + max($1, 0).squareRoot() }
    return max(0, meanGap + trace(covarianceA) + trace(covarianceB) - 2 * crossTrace)
}

/// Mean and unbiased covariance (row-major `n × n`) of a set of vectors, in Double.
private func gaussianFit(_ vectors: [[Float]]) -> (mean: [Double], covariance: [Double]) {
    let (count, n) = (vectors.count, vectors[0].count)
    var mean = [Double](repeating: 0, count: n)
    for v in vectors { for j in 0..<n { mean[j] += Double(v[j]) } }
    mean = mean.map { $0 / Double(count) }
    var covariance = [Double](repeating: 0, count: n * n)
    var centred = [Double](repeating: 0, count: n)
    for v in vectors {
        for j in 0..<n { centred[j] = Double(v[j]) - mean[j] }
        for i in 0..<n where centred[i] != 0 {
            let ci = centred[i]
            for j in i..<n { covariance[i * n + j] += ci * centred[j] }
        }
    }
    for i in 0..<n {
        for j in i..<n {
            covariance[i * n + j] /= Double(count - 1)
            covariance[j * n + i] = covariance[i * n + j]
        }
    }
    return (mean, covariance)
}

/// `V f(Λ) Vᵀ` for a symmetric matrix `V Λ Vᵀ` (eigenvalues below 0 from round-off count as 0).
private func symmetricFunction(_ matrix: [Double], size n: Int, _ f: (Double) -> Double) -> [Double] {
    let eigen = SymmetricEigen(matrix: matrix, size: n)
    var out = [Double](repeating: 0, count: n * n)
    for (k, value) in eigen.values.enumerated() {
        let scale = f(max(value, 0))
        guard scale != 0 else { continue }
        let v = Array(eigen.vector(k))
        for i in 0..<n where v[i] != 0 {
            let vi = scale * v[i]
            for j in 0..<n { out[i * n + j] += vi * v[j] }
        }
    }
    return out
}

/// Row-major `n × n` product.
private func multiply(_ x: [Double], _ y: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for k in 0..<n where x[i * n + k] != 0 {
            let xik = x[i * n + k]
            for j in 0..<n { out[i * n + j] += xik * y[k * n + j] }
        }
    }
    return out
}
