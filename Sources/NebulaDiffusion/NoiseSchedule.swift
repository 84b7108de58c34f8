// The continuous-time, variance-preserving noise schedule:
//
//     z_t = α_t · x0 + σ_t · ε,    α_t² + σ_t² = 1,    t ∈ [0, 1]
//
// described through its log signal-to-noise ratio λ(t) = log(α_t² / σ_t²), from which
// α_t² = sigmoid(λ) and σ_t² = sigmoid(−λ) (Kingma et al. 2021, "Variational Diffusion Models").
import Foundation
import NebulaTensor

/// A variance-preserving cosine noise schedule over continuous time t ∈ [0, 1].
///
/// The base schedule is the continuous cosine schedule of "improved DDPM" / LD4LG,
/// α_t² = cos²(πt/2), σ_t² = sin²(πt/2), whose log-SNR is λ(t) = −2·log tan(πt/2).
///
/// **The clip.** λ(t) runs from +∞ (t = 0) to −∞ (t = 1), where σ/α and 1/α blow up (ε-prediction
/// and the DDPM posterior divide by α). The base λ is therefore clamped to
/// [`logSNRMin`, `logSNRMax`] = [−15, 15] by default (the limits of Hoogeboom et al. 2023, "simple
/// diffusion", which remaps t instead; a clamp keeps the schedule exactly cosine in between).
/// With the defaults this changes the cosine schedule only for t < 3.5·10⁻⁴ and t > 0.99965: at t = 1,
/// α ≈ 5.5·10⁻⁴ (σ/α ≈ 1.8·10³) and at t = 0, σ ≈ 5.5·10⁻⁴.
///
/// **The shift.** `scale` shifts the log-SNR: λ_shifted(t) = λ(t) + 2·log(scale) (Hoogeboom et al. 2023;
/// Chen 2023, "On the importance of noise scheduling for diffusion models", which scales the input by
/// `scale`). `scale < 1` means more noise at every t: a latent with norm √d carries more signal per
/// vector than an image patch, so it needs a noisier schedule to be destroyed at the same rate.
/// The shift is applied after the clip, so the shifted λ lies in
/// [`logSNRMin` + 2·log(scale), `logSNRMax` + 2·log(scale)].
///
/// ```swift
/// let schedule = NoiseSchedule(scale: 0.5)       // 4× lower SNR than the plain cosine schedule
/// let (a, s) = (schedule.alpha(0.3), schedule.sigma(0.3))   // a*a + s*s == 1
/// let zt = schedule.noised(x0, noise: eps, times: t)        // training input, t: one time per row
/// ```
public struct NoiseSchedule: Codable, Sendable, Equatable {
    /// Multiplies the signal-to-noise ratio by `scale²` (adds 2·log(scale) to the log-SNR); 1 = plain cosine.
    public var scale: Double
    /// Lower clamp of the base log-SNR (reached near t = 1).
    public var logSNRMin: Double
    /// Upper clamp of the base log-SNR (reached near t = 0).
    public var logSNRMax: Double

    enum CodingKeys: String, CodingKey {
        case scale
        case logSNRMin = "logsnr_min"
        case logSNRMax = "logsnr_max"
    }

    public init(scale: Double = 1, logSNRMin: Double = -15, logSNRMax: Double = 15) {
        precondition(scale > 0, "NoiseSchedule: scale must be positive")
        precondition(logSNRMin < logSNRMax, "NoiseSchedule: logSNRMin must be below logSNRMax")
        self.scale = scale
        self.logSNRMin = logSNRMin
        self.logSNRMax = logSNRMax
    }

    /// The plain cosine schedule α_t² = cos²(πt/2) with the default clip.
    public static let cosine = NoiseSchedule()

    /// The log signal-to-noise ratio λ(t) = log(α_t²/σ_t²) = clamp(−2·log tan(πt/2)) + 2·log(scale).
    public func logSNR(_ t: Double) -> Double {
        let tc = min(max(t, 0), 1)
        let base: Double
        if tc <= 0 {
            base = logSNRMax
        } else if tc >= 1 {
            base = logSNRMin
        } else {
            base = min(max(-2 * Foundation.log(Foundation.tan(Double.pi * tc / 2)), logSNRMin), logSNRMax)
        }
        return base + 2 * Foundation.log(scale)
    }

    /// The signal coefficient α_t = √sigmoid(λ(t)).
    public func alpha(_ t: Double) -> Double { alphaSigma(t).alpha }

    /// The noise coefficient σ_t = √sigmoid(−λ(t)).
    public func sigma(_ t: Double) -> Double { alphaSigma(t).sigma }

    /// Both coefficients at time `t`, computed from the log-SNR so that α² + σ² = 1 to rounding.
    public func alphaSigma(_ t: Double) -> (alpha: Double, sigma: Double) {
        let lambda = logSNR(t)
        return ((sigmoid(lambda)).squareRoot(), (sigmoid(-lambda)).squareRoot())
    }

    /// Float conveniences for the model side (the model is usually fed `t` as a Float).
    public func alpha(_ t: Float) -> Float { Float(alpha(Double(t))) }
    public func sigma(_ t: Float) -> Float { Float(sigma(Double(t))) }
    public func logSNR(_ t: Float) -> Float { Float(logSNR(Double(t))) }

    /// α and σ for a batch of times, shaped `[B, 1, …, 1]` (rank `rank`) so they broadcast against a
    /// `[B, …]` tensor. Constants: no gradient flows into them.
    public func alphaSigma(times: [Float], rank: Int) -> (alpha: Tensor, sigma: Tensor) {
        precondition(rank >= 1, "alphaSigma: rank must be at least 1")
        let shape = [times.count] + Array(repeating: 1, count: rank - 1)
        let pairs = times.map { alphaSigma(Double($0)) }
        return (
            Tensor(shape: shape, data: pairs.map { Float($0.alpha) }),
            Tensor(shape: shape, data: pairs.map { Float($0.sigma) })
        )
    }

    /// The forward process q(z_t | x0): z_t = α_t·x0 + σ_t·ε, one time per row (first axis) of `x0`.
    public func noised(_ x0: Tensor, noise: Tensor, times: [Float]) -> Tensor {
        precondition(x0.shape == noise.shape, "noised: x0 \(x0.shape) and noise \(noise.shape) differ")
        precondition(x0.rank >= 1 && x0.shape[0] == times.count, "noised: one time per row of x0 is needed")
        let (a, s) = alphaSigma(times: times, rank: x0.rank)
        return a * x0 + s * noise
    }

    /// The time at which the log-SNR equals `lambda` (the inverse of `logSNR`, within the clip).
    /// Useful to pick a starting time for editing by noise level rather than by t.
    public func time(forLogSNR lambda: Double) -> Double {
        let base = min(max(lambda - 2 * Foundation.log(scale), logSNRMin), logSNRMax)
        // λ = −2·log tan(πt/2)  ⇔  t = (2/π)·atan(exp(−λ/2))
        return 2 / Double.pi * Foundation.atan(Foundation.exp(-base / 2))
    }

    private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
}
