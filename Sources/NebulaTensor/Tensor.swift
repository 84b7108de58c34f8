import Synchronization

/// A Float32, row-major, N-dimensional array that records the operations made on it so gradients
/// can flow back through them (reverse-mode automatic differentiation).
///
/// Storage is always contiguous; an op builds a new tensor and, when gradients are wanted, attaches a
/// backward closure that reads the output's gradient and accumulates into its inputs' gradients.
///
/// ```swift
/// let w = Tensor.randn([3, 4], generator: &rng).requiringGrad()
/// let x = Tensor.ones([2, 3])
/// let loss = x.matmul(w).sum()
/// loss.backward()
/// print(w.grad!)    // [3, 4], every entry 2
/// ```
public final class Tensor {
    /// Bytes of element storage of every tensor created so far in this process (elements × 4): what a training
    /// or decoding step allocates, as `nebula-bench` reports it. An upper bound: a reshaped or detached tensor
    /// shares its source's storage but is counted again.
    public static var storageBytesCreated: Int { createdBytes.load(ordering: .relaxed) }
    private static let createdBytes = Atomic<Int>(0)

    /// The size of each dimension, outermost first.
    public let shape: [Int]
    /// The elements in row-major order.
    public internal(set) var data: [Float] { didSet { roundedCopy = nil } }
    /// The elements rounded to bfloat16, kept until `data` changes: a weight's operand for bf16 inference
    /// products (``MatmulPrecision``), made once instead of at every product.
    var roundedCopy: [UInt16]?
    /// Whether gradients are accumulated into this tensor by `backward()`.
    public internal(set) var requiresGrad: Bool
    /// The accumulated gradient (same count as `data`), allocated on first accumulation.
    public internal(set) var gradData: [Float]?

    // The autodiff graph: the inputs this tensor was computed from and how to push its gradient to them.
    var inputs: [Tensor] = []
    var backwardFn: ((Tensor) -> Void)?

    /// Creates a tensor from row-major values.
    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(
            shape.reduce(1, *) == data.count,
            "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
        Tensor.createdBytes.add(4 * data.count, ordering: .relaxed)
    }

    /// Creates a tensor from a flat array with the given shape (alias of `init(shape:data:)`).
    public convenience init(_ values: [Float], shape: [Int]) { self.init(shape: shape, data: values) }

    /// A rank-0 tensor holding one value.
    public convenience init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    /// Number of elements.
    public var count: Int { data.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The gradient as a tensor, or nil when none has been accumulated.
    public var grad: Tensor? { gradData.map { Tensor(shape: shape, data: $0) } }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "Tensor.item: tensor of shape \(shape) has \(count) elements, not 1")
        return data[0]
    }

    /// Size of dimension `axis` (negative counts from the end).
    public func size(_ axis: Int) -> Int { shape[normalizeAxis(axis, rank: rank)] }

    /// Marks this (leaf) tensor as a parameter whose gradient is wanted; returns self.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        requiresGrad = flag
        return self
    }

    /// Drops the accumulated gradient.
    public func zeroGrad() { gradData = nil }

    /// A tensor with the same values that is cut from the graph: no gradient flows through it.
    public func detached() -> Tensor { Tensor(shape: shape, data: data) }

    /// Overwrites the values in place (shapes must match). Used by optimizers and checkpoint loading.
    public func assign(_ values: [Float]) {
        precondition(values.count == count, "Tensor.assign: expected \(count) values for shape \(shape), got \(values.count)")
        data = values
    }

    /// Runs `body` on the mutable values in place.
    public func withMutableData<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try data.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Runs `body` on the gradient buffer, creating it (zero-filled) when absent.
    public func withGradBuffer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if gradData == nil { gradData = [Float](repeating: 0, count: count) }
        return try gradData!.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Runs `body` with the mutable values and the gradients of every tensor in `tensors` (each must have a
    /// gradient), so that one loop can update them all: an optimizer step over a whole model.
    public static func withValuesAndGradients<R>(
        of tensors: [Tensor],
        _ body: (_ values: [UnsafeMutablePointer<Float>], _ gradients: [UnsafePointer<Float>]) -> R
    ) -> R {
        var values: [UnsafeMutablePointer<Float>] = [], gradients: [UnsafePointer<Float>] = []
        values.reserveCapacity(tensors.count)
        gradients.reserveCapacity(tensors.count)
        // Each buffer's pointer is valid only inside its closure, so the closures nest, one tensor deep each.
        func collect(_ index: Int) -> R {
            guard index < tensors.count else { return body(values, gradients) }
            let tensor = tensors[index]
            precondition(tensor.gradData != nil, "withValuesAndGradients: tensor \(index) has no gradient")
            return tensor.gradData!.withUnsafeBufferPointer { g in
                tensor.data.withUnsafeMutableBufferPointer { p in
                    values.append(p.baseAddress!)
                    gradients.append(g.baseAddress!)
                    return collect(index + 1)
                }
            }
        }
        return collect(0)
    }

    /// Replaces the gradient (used by gradient clipping and accumulation helpers).
    public func setGrad(_ values: [Float]?) {
        if let values { precondition(values.count == count, "Tensor.setGrad: count mismatch") }
        gradData = values
    }
}

// MARK: - Creation

extension Tensor {
    /// All zeros.
    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// All ones.
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }

    /// Every element equal to `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// `0, 1, ..., n-1`.
    public static func arange(_ n: Int) -> Tensor {
        Tensor(shape: [n], data: (0..<n).map(Float.init))
    }

    /// Standard normal samples times `std` plus `mean`, from a seeded generator.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        if generator.skipsInitialization { return Tensor(shape: shape, data: values) }
        for i in 0..<n { values[i] = mean + std * generator.nextGaussian() }
        return Tensor(shape: shape, data: values)
    }

    /// Uniform samples in `[low, high)` from a seeded generator.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout SeededGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        if generator.skipsInitialization { return Tensor(shape: shape, data: values) }
        for i in 0..<n { values[i] = low + (high - low) * generator.nextUniform() }
        return Tensor(shape: shape, data: values)
    }

    /// Builds a tensor from integer values (token ids, class labels) stored as Float.
    public static func fromInts<S: Sequence>(_ values: S, shape: [Int]) -> Tensor where S.Element: BinaryInteger {
        Tensor(shape: shape, data: values.map { Float($0) })
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = data.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
