/// Whether operations record the graph for backpropagation.
///
/// Inference code runs inside `withNoGrad { ... }` so no graph (and no cached activation) is kept.
/// The mode belongs to the caller's task or thread (a task-local value), so a server can run inference
/// for one request while another thread trains.
public enum GradMode {
    @TaskLocal private static var recordingOff = false

    /// Whether ops called on this task or thread record the graph.
    public static var isEnabled: Bool { !recordingOff }

    /// Runs `body` with graph recording off on this task or thread; the previous mode returns afterwards.
    public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $recordingOff.withValue(true, operation: body)
    }

    /// Runs `body` with graph recording on, even inside `withNoGrad` (a gradient taken during inference, such as
    /// classifier guidance's); the previous mode returns afterwards.
    public static func withGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $recordingOff.withValue(false, operation: body)
    }
}

/// Runs `body` without recording the autodiff graph (inference, evaluation, EMA updates).
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R { try GradMode.withNoGrad(body) }

extension Tensor {
    /// Builds an op's result: attaches `backward` (which reads `out.gradData` and accumulates into the
    /// inputs' gradients) only when recording is on and some input needs a gradient.
    @inline(__always)
    static func result(shape: [Int], data: [Float], inputs: [Tensor], backward: @escaping (Tensor) -> Void) -> Tensor {
        let out = Tensor(shape: shape, data: data)
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.inputs = inputs
            out.backwardFn = backward
        }
        return out
    }

    /// Whether this tensor is a leaf: created directly rather than computed by an op.
    public var isLeaf: Bool { backwardFn == nil }

    /// Backpropagates from this tensor: seeds its gradient with `seed` (ones for a scalar loss), walks
    /// the graph in reverse topological order and accumulates gradients into every leaf that requires
    /// them. The graph is released afterwards (intermediate gradients and closures are dropped).
    public func backward(seed: [Float]? = nil) {
        precondition(
            requiresGrad, "Tensor.backward: this tensor does not require grad (no parameter upstream, or computed under withNoGrad)")
        precondition(seed != nil || count == 1, "Tensor.backward: a non-scalar tensor of shape \(shape) needs an explicit seed gradient")
        let order = topologicalOrder()
        withGradBuffer { g in
            if let seed {
                precondition(seed.count == count, "Tensor.backward: seed has \(seed.count) values, expected \(count)")
                for i in 0..<count { g[i] += seed[i] }
            } else {
                g[0] += 1
            }
        }
        for node in order.reversed() {
            guard let fn = node.backwardFn else { continue }
            if node.gradData != nil { fn(node) }
            // Free the graph as we go: the closure holds the activations it cached.
            node.backwardFn = nil
            node.inputs = []
            node.gradData = nil
        }
    }

    /// Nodes reachable from self, inputs before outputs (iterative DFS: graphs can be deep).
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for input in node.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }

    /// Runs `body` on the gradient buffer when this tensor needs a gradient, else on a throwaway buffer
    /// (for fused ops whose backward writes every input's gradient in one pass).
    func withGradOrScratch(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        if requiresGrad { withGradBuffer(body); return }
        var scratch = [Float](repeating: 0, count: count)
        scratch.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Accumulates `values` into this tensor's gradient (no-op when it needs none).
    @inline(__always)
    func accumulateGrad(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        guard requiresGrad else { return }
        withGradBuffer(body)
    }
}
