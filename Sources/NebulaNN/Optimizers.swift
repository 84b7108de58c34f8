import Foundation
import NebulaTensor

/// An optimizer updates parameters from their accumulated gradients, one parameter at a time.
public protocol Optimizer: AnyObject {
    /// The learning rate used by the next step (set it from a schedule before each step).
    var learningRate: Float { get set }
    /// Updates one named parameter from its gradient.
    func update(_ name: String, _ parameter: Tensor)
    /// Number of steps taken.
    var stepCount: Int { get }
    /// Marks the end of a step (advances bias corrections and counters).
    func finishStep()
}

extension Optimizer {
    /// One step over every trainable parameter of `model` that has a gradient; gradients are then cleared.
    public func step(_ model: Module) { step(model.trainableParameters()) }

    /// One step over the given named parameters; gradients are then cleared.
    public func step(_ parameters: [(String, Tensor)]) {
        for (name, p) in parameters where p.gradData != nil { update(name, p) }
        finishStep()
        for (_, p) in parameters { p.zeroGrad() }
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's `torch.optim.AdamW`. Parameters
/// with fewer than 2 dimensions (biases, norm scales) get no weight decay.
///
/// ```swift
/// let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.1)
/// loss.backward()
/// optimizer.step(model)
/// ```
public final class AdamW: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// First and second moments by parameter name (saved in training checkpoints).
    public var firstMoments: [String: [Float]] = [:]
    public var secondMoments: [String: [Float]] = [:]
    public private(set) var stepCount = 0

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    public func update(_ name: String, _ parameter: Tensor) {
        let n = parameter.count
        let t = Float(stepCount + 1)
        let correction1 = 1 - powf(beta1, t), correction2 = 1 - powf(beta2, t)
        let stepSize = learningRate / correction1, rootCorrection2 = sqrtf(correction2)
        let decay = parameter.rank >= 2 ? 1 - learningRate * weightDecay : 1
        let (b1, b2, eps) = (beta1, beta2, self.eps)
        // Taken out of the dictionaries so the updates below mutate them in place (no copy).
        var m = firstMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: n)
        var v = secondMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: n)
        precondition(m.count == n, "AdamW: state for \(name) has \(m.count) values, parameter has \(n)")
        parameter.withMutableData { p in m.withUnsafeMutableBufferPointer { m in v.withUnsafeMutableBufferPointer { v in
            parameter.gradData!.withUnsafeBufferPointer { g in
                let (p, m, v, g) = (p.baseAddress!, m.baseAddress!, v.baseAddress!, g.baseAddress!)
                Parallel.forRanges(n, grain: 1 << 14) { range in
                    // Eight lanes at a time (the scalar loop does not vectorise), the same operations per element.
                    func lanes(_ pointer: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
                        UnsafeRawPointer(pointer + i).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ i: Int) {
                        UnsafeMutableRawPointer(pointer + i).storeBytes(of: value, as: SIMD8<Float>.self)
                    }
                    var i = range.lowerBound
                    while i + 8 <= range.upperBound {
                        let gi = lanes(g, i)
                        let mi = b1 * lanes(m, i) + (1 - b1) * gi
                        let vi = b2 * lanes(v, i) + (1 - b2) * gi * gi
                        store(mi, m, i)
                        store(vi, v, i)
                        store(lanes(p, i) * decay - stepSize * mi / (vi.squareRoot() / rootCorrection2 + eps), p, i)
                        i += 8
                    }
                    for i in i..<range.upperBound {
                        m[i] = b1 * m[i] + (1 - b1) * g[i]
                        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                        p[i] = p[i] * decay - stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + eps)
                    }
                }
            }
        } } }
        firstMoments[name] = m
        secondMoments[name] = v
    }

    public func finishStep() { stepCount += 1 }

    /// Restores the step count (when resuming from a checkpoint).
    public func restore(stepCount: Int) { self.stepCount = stepCount }
}

/// A learning-rate schedule: the rate for a 0-based step.
public typealias LearningRateSchedule = (Int) -> Float

/// Linear warmup to `peak` over `warmup` steps, then cosine decay to `minimum` at `total` steps (nanoGPT's).
public func cosineSchedule(peak: Float, warmup: Int, total: Int, minimum: Float) -> LearningRateSchedule {
    { step in
        if step < warmup { return peak * Float(step + 1) / Float(warmup + 1) }
        if step >= total { return minimum }
        let progress = Float(step - warmup) / Float(max(1, total - warmup))
        return minimum + 0.5 * (1 + cosf(.pi * progress)) * (peak - minimum)
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters {
        guard let g = p.gradData else { continue }
        total += g.withUnsafeBufferPointer(sumOfSquares)
    }
    let norm = Float(total.squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters where p.gradData != nil {
            p.withGradBuffer { g in
                let g = g
                Parallel.forRanges(g.count, grain: 1 << 15) { range in for i in range { g[i] *= scale } }
            }
        }
    }
    return norm
}

/// An exponential moving average of a model's weights, `shadow ← decay·shadow + (1−decay)·weights`,
/// used for sampling from diffusion models.
public final class EMA {
    public let decay: Float
    /// Averaged values by parameter name.
    public private(set) var shadow: [String: [Float]]

    public init(_ model: Module, decay: Float = 0.999) {
        self.decay = decay
        shadow = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.data) })
    }

    /// Folds the model's current weights into the average.
    public func update(_ model: Module) {
        for (name, p) in model.namedParameters() {
            guard var s = shadow.removeValue(forKey: name) else { continue } // taken out: updated in place
            p.data.withUnsafeBufferPointer { d in
                for i in 0..<s.count { s[i] = decay * s[i] + (1 - decay) * d[i] }
            }
            shadow[name] = s
        }
    }

    /// Restarts the average at the model's current weights (e.g. averaged weights read from a checkpoint).
    public func reset(to model: Module) {
        shadow = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.data) })
    }

    /// Replaces the averaged values of the names in `values` (e.g. read back from a training state).
    public func restore(_ values: [String: [Float]]) {
        for (name, value) in values where shadow[name]?.count == value.count { shadow[name] = value }
    }

    /// Writes the averaged weights into `model` (e.g. a copy used for sampling).
    public func copy(to model: Module) {
        for (name, p) in model.namedParameters() { if let s = shadow[name] { p.assign(s) } }
    }
}
