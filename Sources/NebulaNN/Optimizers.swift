import Foundation
import NebulaTensor

/// An optimizer updates parameters from their accumulated gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate used by the next step (set it from a schedule before each step).
    var learningRate: Float { get set }
    /// Number of steps taken.
    var stepCount: Int { get }
    /// One step over the given named parameters that have a gradient; gradients are then cleared.
    func step(_ parameters: [(String, Tensor)])
}

extension Optimizer {
    /// One step over every trainable parameter of `model` that has a gradient; gradients are then cleared.
    public func step(_ model: Module) { step(model.trainableParameters()) }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's `torch.optim.AdamW`. Parameters
/// with fewer than 2 dimensions (biases, norm scales) get no weight decay.
///
/// The moments of all parameters live in two flat buffers, and a step updates every parameter in one
/// parallel, vectorised pass over them (not one loop per tensor: a model's many small biases and norm
/// scales would each run serially).
///
/// ```swift
/// let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0.1)
/// loss.backward()
/// optimizer.step(model)
/// ```
public final class AdamW: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    /// First and second moments of every parameter, one after another; `slots[name]` is a parameter's range.
    private var firstMoment: [Float] = [], secondMoment: [Float] = []
    private var slots: [String: Range<Int>] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// The names of the parameters that have moments (saved in training checkpoints).
    public var parameterNames: [String] { slots.keys.sorted() }

    /// A parameter's first and second moments, or nil before its first step.
    public func moments(of name: String) -> (first: [Float], second: [Float])? {
        slots[name].map { (Array(firstMoment[$0]), Array(secondMoment[$0])) }
    }

    /// Sets a parameter's moments (restoring a checkpoint); both must have the parameter's element count.
    public func setMoments(of name: String, first: [Float], second: [Float]) {
        precondition(first.count == second.count, "AdamW: \(name)'s moments have \(first.count) and \(second.count) values")
        let slot = slot(for: name, count: first.count)
        firstMoment.replaceSubrange(slot, with: first)
        secondMoment.replaceSubrange(slot, with: second)
    }

    /// Forgets every moment (a fresh start, or before restoring a checkpoint).
    public func clearMoments() {
        (firstMoment, secondMoment, slots) = ([], [], [:])
    }

    /// The range of `name`'s moments, appended (zeros) on first use.
    private func slot(for name: String, count: Int) -> Range<Int> {
        if let slot = slots[name] {
            precondition(slot.count == count, "AdamW: state for \(name) has \(slot.count) values, parameter has \(count)")
            return slot
        }
        let slot = firstMoment.count..<(firstMoment.count + count)
        firstMoment.append(contentsOf: repeatElement(0, count: count))
        secondMoment.append(contentsOf: repeatElement(0, count: count))
        slots[name] = slot
        return slot
    }

    public func step(_ parameters: [(String, Tensor)]) {
        var seen = Set<ObjectIdentifier>()
        let live = parameters.filter { $0.1.gradData != nil && seen.insert(ObjectIdentifier($0.1)).inserted }
        let tensors = live.map(\.1)
        let momentStarts = live.map { slot(for: $0.0, count: $0.1.count).lowerBound }
        // Parameter i covers [ends[i] − counts[i], ends[i]) of the pass's index space. (Counts are read now:
        // inside the pass the tensors' storage is being modified.)
        let counts = tensors.map(\.count)
        var ends: [Int] = [], total = 0
        for count in counts { total += count; ends.append(total) }
        let decays = tensors.map { $0.rank >= 2 ? 1 - learningRate * weightDecay : Float(1) }
        let t = Float(stepCount + 1)
        let stepSize = learningRate / (1 - powf(beta1, t)), rootCorrection2 = sqrtf(1 - powf(beta2, t))
        let (b1, b2, eps) = (beta1, beta2, self.eps)

        if total > 0 {
            Tensor.withValuesAndGradients(of: tensors) { values, gradients in
                firstMoment.withUnsafeMutableBufferPointer { m in
                    secondMoment.withUnsafeMutableBufferPointer { v in
                        let (m, v) = (m.baseAddress!, v.baseAddress!)
                        Parallel.forRanges(total, grain: 1 << 14) { range in
                            // The parameters this worker's range overlaps, each updated on its overlap.
                            var (i, high) = (0, ends.count)  // the first parameter ending after the range's start
                            while i < high {
                                let middle = (i + high) / 2
                                if ends[middle] <= range.lowerBound { i = middle + 1 } else { high = middle }
                            }
                            while i < ends.count && ends[i] - counts[i] < range.upperBound {
                                let start = ends[i] - counts[i]
                                let lower = Swift.max(range.lowerBound, start) - start, upper = Swift.min(range.upperBound, ends[i]) - start
                                let moments = momentStarts[i]
                                adamUpdate(
                                    values[i] + lower, gradients[i] + lower, m + moments + lower, v + moments + lower,
                                    count: upper - lower, decay: decays[i], stepSize: stepSize,
                                    rootCorrection2: rootCorrection2, beta1: b1, beta2: b2, eps: eps)
                                i += 1
                            }
                        }
                    }
                }
            }
        }
        stepCount += 1
        for (_, p) in parameters { p.zeroGrad() }
    }

    /// Restores the step count (when resuming from a checkpoint).
    public func restore(stepCount: Int) { self.stepCount = stepCount }
}

/// AdamW's update of `count` consecutive elements, eight lanes at a time (the scalar loop compiles to
/// scalar divisions and square roots), the same operations per element in the tail:
/// m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  p ← decay·p − stepSize·m / (√v / √(1−β2ᵗ) + ε).
@inline(__always)
private func adamUpdate(
    _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
    _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, count: Int,
    decay: Float, stepSize: Float, rootCorrection2: Float, beta1 b1: Float, beta2 b2: Float, eps: Float
) {
    func lanes(_ pointer: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(pointer + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(pointer + i).storeBytes(of: value, as: SIMD8<Float>.self)
    }
    var i = 0
    while i + 8 <= count {
        let gi = lanes(g, i)
        let mi = b1 * lanes(m, i) + (1 - b1) * gi
        let vi = b2 * lanes(v, i) + (1 - b2) * gi * gi
        store(mi, m, i)
        store(vi, v, i)
        store(lanes(p, i) * decay - stepSize * mi / (vi.squareRoot() / rootCorrection2 + eps), p, i)
        i += 8
    }
    for i in i..<count {
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
        p[i] = p[i] * decay - stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + eps)
    }
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
            guard var s = shadow.removeValue(forKey: name) else { continue }  // taken out: updated in place
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
