import NebulaTensor

/// The base of every layer and model: a tree of named parameters and sub-modules.
///
/// Parameters are the `Tensor` properties of a module, sub-modules its `Module` (or `[Module]`)
/// properties; both are found by reflection, so the property names *are* the checkpoint names:
/// `blocks.0.attn.qkv.weight` is `blocks[0].attn.qkv.weight`. Subclasses call layers with
/// `callAsFunction` and declare their parts as `let` properties.
///
/// ```swift
/// final class TwoLayer: Module {
///     let fc1: Linear, fc2: Linear
///     init(generator: inout SeededGenerator) {
///         fc1 = Linear(4, 8, generator: &generator); fc2 = Linear(8, 1, generator: &generator)
///     }
///     func callAsFunction(_ x: Tensor) -> Tensor { fc2(fc1(x).gelu()) }
/// }
/// let net = TwoLayer(generator: &rng)
/// net.namedParameters().map(\.0)   // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
/// ```
open class Module {
    /// Training mode (dropout on, caches off) or evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// Direct children: parameters and sub-modules with their property names, in declaration order.
    private func children() -> [(String, Any)] {
        var result: [(String, Any)] = []
        func visit(_ name: String, _ value: Any) {
            switch value {
            case let tensor as Tensor: result.append((name, tensor))
            case let module as Module: result.append((name, module))
            case let list as [Module]: for (i, m) in list.enumerated() { result.append(("\(name).\(i)", m)) }
            default:
                let mirror = Mirror(reflecting: value)
                if mirror.displayStyle == .optional, let wrapped = mirror.children.first { visit(name, wrapped.value) }
            }
        }
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let m = mirror { mirrors.insert(m, at: 0); mirror = m.superclassMirror }
        for m in mirrors { for child in m.children { if let label = child.label { visit(label, child.value) } } }
        return result
    }

    /// Every parameter with its dotted name, depth first in declaration order.
    public func namedParameters() -> [(String, Tensor)] {
        children().flatMap { name, value -> [(String, Tensor)] in
            if let tensor = value as? Tensor { return [(name, tensor)] }
            return (value as! Module).namedParameters().map { ("\(name).\($0.0)", $0.1) }
        }
    }

    /// Every sub-module (self included, under the empty name) with its dotted name.
    public func namedModules() -> [(String, Module)] {
        [("", self)]
            + children().flatMap { name, value -> [(String, Module)] in
                guard let module = value as? Module else { return [] }
                return module.namedModules().map { ($0.0.isEmpty ? name : "\(name).\($0.0)", $0.1) }
            }
    }

    /// All parameters.
    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Parameters that are not frozen, with their names.
    public func trainableParameters() -> [(String, Tensor)] { namedParameters().filter { $0.1.requiresGrad } }

    /// A 64-bit FNV-1a hash of every parameter's values in order: equal weights give equal hashes, on every
    /// platform and run (keys of caches derived from the weights).
    public func weightsHash() -> UInt64 { NebulaNN.weightsHash(parameters()) }

    /// Total number of parameter elements.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Switches this module and all sub-modules to training (`true`) or evaluation mode.
    public func train(_ on: Bool = true) { for (_, m) in namedModules() { m.isTraining = on } }

    /// Evaluation mode.
    public func eval() { train(false) }

    /// Stops gradients for every parameter (a frozen component).
    public func freeze() { for p in parameters() { p.requiringGrad(false) } }

    /// Lets gradients flow to every parameter again.
    public func unfreeze() { for p in parameters() { p.requiringGrad(true) } }

    /// Drops every parameter's gradient.
    public func zeroGrad() { for p in parameters() { p.zeroGrad() } }
}

/// A 64-bit FNV-1a hash of the tensors' values (their bytes, in order): the same on every platform and run.
public func weightsHash(_ tensors: [Tensor]) -> UInt64 { fnv1aHash(tensors.map(\.data)) }
