import NebulaTensor

/// A fully connected layer, `y = x·Wᵀ + b`, with PyTorch's `[out, in]` weight layout.
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    /// Weights from N(0, std²), bias zero.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, std: Float = 0.02, generator: inout SeededGenerator) {
        weight = Tensor.randn([outFeatures, inFeatures], std: std, generator: &generator).requiringGrad()
        self.bias = bias ? Tensor.zeros([outFeatures]).requiringGrad() : nil
    }

    /// `x: [..., in]` → `[..., out]`.
    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// A lookup table of learned vectors, one per id.
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dimension: Int, std: Float = 0.02, generator: inout SeededGenerator) {
        weight = Tensor.randn([count, dimension], std: std, generator: &generator).requiringGrad()
    }

    /// `ids` with shape `shape` → `shape + [dimension]`.
    public func callAsFunction(_ ids: [Int32], shape: [Int]) -> Tensor { weight.gatherRows(ids, indexShape: shape) }
}

/// Layer normalization over the last dimension, with learned scale and shift (unless `affine` is false).
public final class LayerNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-5, affine: Bool = true) {
        weight = affine ? Tensor.ones([dimension]).requiringGrad() : nil
        bias = affine ? Tensor.zeros([dimension]).requiringGrad() : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// RMS normalization over the last dimension, with a learned scale.
public final class RMSNorm: Module {
    public let weight: Tensor
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-6) {
        weight = Tensor.ones([dimension]).requiringGrad()
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { rmsNorm(x, weight: weight, eps: eps) }
}

/// The transformer feed-forward block: `proj(gelu(fc(x)))`, hidden width `ratio × dimension`.
public final class MLP: Module {
    public let fc: Linear
    public let proj: Linear

    public init(_ dimension: Int, hidden: Int, projectionStd: Float = 0.02, generator: inout SeededGenerator) {
        fc = Linear(dimension, hidden, generator: &generator)
        proj = Linear(hidden, dimension, std: projectionStd, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { proj(fc(x).gelu()) }
}
