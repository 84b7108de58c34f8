import Foundation
import NebulaTensor

/// A Gaussian fitted to latents: the mean and covariance of the flattened `K·d` vectors.
///
/// It is the model of a latent space that knows its first two moments and nothing more, and so the
/// baseline a denoiser must beat:
/// - ``sample(count:generator:)`` draws latents from it: decoded, they show what the decoder writes from
///   latents that match the data's mean and covariance without any loop (`eval generation`'s control row);
/// - ``linearDenoiserLoss(x0:noise:times:schedule:objective:)`` is the training loss of the best denoiser
///   under this model, the linear (Wiener) one, x0̂ = μ + αΣ(α²Σ + σ²I)⁻¹(z − αμ). For Gaussian data no
///   denoiser does better; a trained one that does not beat it on real latents has learned nothing the
///   covariance did not already say (`train diffusion` logs it as `val_loss_gaussian`).
///
/// ```swift
/// let gaussian = GaussianLatentModel(latents: z)            // z: [N, K, d]
/// let control = gaussian.sample(count: 64, generator: &rng) // [64, K, d]
/// let floor = gaussian.linearDenoiserLoss(x0: heldOut, noise: eps, times: t, schedule: .cosine, objective: .v)
/// ```
public struct GaussianLatentModel {
    /// The shape of one latent, `[K, d]`.
    public let shape: [Int]
    /// The mean latent, flattened (`K·d`).
    public let mean: [Float]
    /// The covariance's eigenvalues, largest first (rounding's negative ones clamped to 0).
    public let variances: [Float]
    /// `[D, D]`, row i the unit eigenvector of `variances[i]`.
    private let basis: Tensor

    /// Fits the model to latents `[N, K, d]` (N ≥ 2; the covariance is divided by N − 1).
    public init(latents: Tensor) {
        precondition(latents.rank == 3 && latents.shape[0] >= 2, "GaussianLatentModel: needs latents [N ≥ 2, K, d], got \(latents.shape)")
        let (n, d) = (latents.shape[0], latents.shape[1] * latents.shape[2])
        shape = Array(latents.shape.dropFirst())
        let flat = latents.reshaped([n, d])
        let mean = flat.mean(axis: 0)  // [D]
        let centred = flat - mean
        let covariance = centred.matmul(centred, transposeA: true) * (1 / Float(n - 1))  // [D, D]
        let eigen = SymmetricEigen(matrix: covariance.data.map(Double.init), size: d)
        self.mean = mean.data
        variances = eigen.values.map { Float(max($0, 0)) }
        basis = Tensor(shape: [d, d], data: eigen.vectors.map(Float.init))
    }

    /// Latents drawn from N(mean, covariance): `[count, K, d]`.
    public func sample(count: Int, generator: inout SeededGenerator) -> Tensor {
        let d = mean.count
        let scales = Tensor(shape: [d], data: variances.map { $0.squareRoot() })
        let white = Tensor.randn([count, d], generator: &generator)  // [count, D]
        return ((white * scales).matmul(basis) + Tensor(shape: [d], data: mean)).reshaped([count] + shape)
    }

    /// The mean squared error of `objective`'s target when the linear (Wiener) denoiser of this model predicts
    /// it from x0 `[B, K, d]` noised with `noise` at `times` (one per row): directly comparable with a trained
    /// denoiser's loss on the same x0, noise and times.
    public func linearDenoiserLoss(x0: Tensor, noise: Tensor, times: [Float], schedule: NoiseSchedule, objective: Objective) -> Double {
        precondition(
            x0.shape == noise.shape && x0.rank == 3 && Array(x0.shape.dropFirst()) == shape && times.count == x0.shape[0],
            "linearDenoiserLoss: x0 \(x0.shape) and noise \(noise.shape) need shape [\(times.count)] + \(shape)")
        let (b, d) = (x0.shape[0], mean.count)
        // In the covariance's eigenbasis each coordinate is an independent scalar problem: with c = x0 − μ and
        // z − αμ = αc + σε, the posterior mean of c_i is g_i·(αc_i + σε_i), g_i = αλ_i/(α²λ_i + σ²).
        let signal = (x0.reshaped([b, d]) - Tensor(shape: [d], data: mean)).matmul(basis, transposeB: true).data  // [B, D]
        let noiseCoordinates = noise.reshaped([b, d]).matmul(basis, transposeB: true).data  // [B, D]
        var total = 0.0
        for row in 0..<b {
            let (alpha, sigma) = schedule.alphaSigma(Double(times[row]))
            var squaredError = 0.0  // ‖x0̂ − x0‖²
            for i in 0..<d {
                let lambda = Double(variances[i])
                let gain = alpha * lambda / (alpha * alpha * lambda + sigma * sigma)
                let c = Double(signal[row * d + i])
                let error = gain * (alpha * c + sigma * Double(noiseCoordinates[row * d + i])) - c
                squaredError += error * error
            }
            // ε̂ = (z − αx0̂)/σ, so the target's error is (fromX0 − fromEps·α/σ)·(x0̂ − x0).
            let (fromX0, fromEps) = objective.targetCoefficients(alpha: alpha, sigma: sigma)
            let k = fromX0 - fromEps * alpha / sigma
            total += k * k * squaredError
        }
        return total / Double(b * d)
    }
}
