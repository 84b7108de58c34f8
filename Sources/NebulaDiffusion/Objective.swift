// What the denoiser predicts, and the conversions between its output and (x0, ε) — all in one place.
//
// With z = α·x0 + σ·ε and α² + σ² = 1 (Salimans & Ho 2022, "Progressive distillation", appendix D):
//
//     v  = α·ε − σ·x0
//     x0 = α·z − σ·v
//     ε  = σ·z + α·v
//
// Every conversion is linear in (model output, z), so it is written once, below, as four coefficients;
// the array and tensor versions only apply them.
import Foundation
import NebulaTensor

/// The quantity the denoiser is trained to predict from (z_t, t).
///
/// ```swift
/// let objective = Objective.v
/// let target = objective.target(x0: x0, noise: eps, alpha: a, sigma: s)     // training
/// let (x0Hat, epsHat) = objective.predictions(modelOutput: out, sample: zt, alpha: a, sigma: s)
/// ```
public enum Objective: String, Codable, Sendable, CaseIterable {
    /// v-prediction, v = α·ε − σ·x0 (the default; well conditioned at every t).
    case v
    /// ε-prediction (DDPM); x0 = (z − σ·ε)/α is ill conditioned near t = 1, where α → 0.
    case epsilon
    /// x0-prediction; ε = (z − α·x0)/σ is ill conditioned near t = 0, where σ → 0.
    case x0

    /// The coefficients of the two linear maps (model output, z) → x0̂ and (model output, z) → ε̂:
    /// x0̂ = `x0FromOutput`·output + `x0FromSample`·z, ε̂ = `epsFromOutput`·output + `epsFromSample`·z.
    public struct Conversion: Sendable, Equatable {
        public var x0FromOutput: Double
        public var x0FromSample: Double
        public var epsFromOutput: Double
        public var epsFromSample: Double
    }

    /// The conversion from a model output at a time with coefficients (α, σ) to (x0̂, ε̂).
    public func conversion(alpha a: Double, sigma s: Double) -> Conversion {
        switch self {
        case .v:  // x0 = α·z − σ·v,  ε = σ·z + α·v
            return Conversion(x0FromOutput: -s, x0FromSample: a, epsFromOutput: a, epsFromSample: s)
        case .epsilon:  // x0 = (z − σ·ε)/α,  ε = ε
            return Conversion(x0FromOutput: -s / a, x0FromSample: 1 / a, epsFromOutput: 1, epsFromSample: 0)
        case .x0:  // x0 = x0,  ε = (z − α·x0)/σ
            return Conversion(x0FromOutput: 1, x0FromSample: 0, epsFromOutput: -a / s, epsFromSample: 1 / s)
        }
    }

    /// The training target as a linear map of (x0, ε): target = `fromX0`·x0 + `fromEps`·ε.
    /// It is also the output of the ideal model when x0 and ε are known.
    public func targetCoefficients(alpha a: Double, sigma s: Double) -> (fromX0: Double, fromEps: Double) {
        switch self {
        case .v: return (-s, a)  // v = α·ε − σ·x0
        case .epsilon: return (0, 1)
        case .x0: return (1, 0)
        }
    }

    // MARK: - Arrays (one time for all values: the samplers)

    /// (x0̂, ε̂) from a model output and the sample z_t it was computed from, both at (α, σ).
    public func predictions(modelOutput: [Float], sample: [Float], alpha: Double, sigma: Double)
        -> (x0: [Float], epsilon: [Float])
    {
        precondition(modelOutput.count == sample.count, "predictions: output and sample sizes differ")
        let c = conversion(alpha: alpha, sigma: sigma)
        let (xo, xz) = (Float(c.x0FromOutput), Float(c.x0FromSample))
        let (eo, ez) = (Float(c.epsFromOutput), Float(c.epsFromSample))
        var x0 = [Float](repeating: 0, count: sample.count)
        var eps = [Float](repeating: 0, count: sample.count)
        for i in 0..<sample.count {
            x0[i] = xo * modelOutput[i] + xz * sample[i]
            eps[i] = eo * modelOutput[i] + ez * sample[i]
        }
        return (x0, eps)
    }

    /// The training target for (x0, ε) at (α, σ).
    public func target(x0: [Float], noise: [Float], alpha: Double, sigma: Double) -> [Float] {
        precondition(x0.count == noise.count, "target: x0 and noise sizes differ")
        let (cx, ce) = targetCoefficients(alpha: alpha, sigma: sigma)
        let (fx, fe) = (Float(cx), Float(ce))
        return zip(x0, noise).map { fx * $0 + fe * $1 }
    }

    // MARK: - Tensors (one time per row: training, self-conditioning)

    /// (x0̂, ε̂) for a batch; `alpha` and `sigma` broadcast against `sample` (e.g. `[B, 1, 1]` from
    /// ``NoiseSchedule/alphaSigma(times:rank:)``). Gradients flow into `modelOutput` through the ops.
    public func predictions(modelOutput: Tensor, sample: Tensor, alpha: Tensor, sigma: Tensor)
        -> (x0: Tensor, epsilon: Tensor)
    {
        let cs = zip(alpha.data, sigma.data).map { conversion(alpha: Double($0), sigma: Double($1)) }
        func coefficient(_ k: KeyPath<Conversion, Double>) -> Tensor {
            Tensor(shape: alpha.shape, data: cs.map { Float($0[keyPath: k]) })
        }
        let x0 = coefficient(\.x0FromOutput) * modelOutput + coefficient(\.x0FromSample) * sample
        let eps = coefficient(\.epsFromOutput) * modelOutput + coefficient(\.epsFromSample) * sample
        return (x0, eps)
    }

    /// The training target for a batch; `alpha` and `sigma` broadcast against `x0`.
    public func target(x0: Tensor, noise: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor {
        let cs = zip(alpha.data, sigma.data).map { targetCoefficients(alpha: Double($0), sigma: Double($1)) }
        let fromX0 = Tensor(shape: alpha.shape, data: cs.map { Float($0.fromX0) })
        let fromEps = Tensor(shape: alpha.shape, data: cs.map { Float($0.fromEps) })
        return fromX0 * x0 + fromEps * noise
    }
}
