/// How the engine runs the tensor code of the current task or thread: how many workers its parallel loops use, the
/// precision of its large matrix products and the library that runs them.
///
/// A task-local value, like `GradMode`: bind one for a scope with ``run(_:)-(()throws->R)``; tasks started inside
/// inherit it, and `Parallel`'s worker threads run each loop under the context of the thread that started it. So a
/// server can serve in fp32 on 4 threads while a benchmark in the same process times bf16 on 1, and nothing is
/// set process-wide.
///
/// ```swift
/// let context = ExecutionContext(threads: 1, precision: .bf16)
/// let logits = try context.run { try model.logits(tokens) }
/// ```
public struct ExecutionContext: Sendable, Equatable {
    /// The most workers a parallel loop uses (at most `Parallel.defaultThreads`, the size of the worker pool).
    public var threads: Int
    /// The precision of the linear layers' and `matmul`'s products; bf16 where this CPU cannot run it natively
    /// runs fp32 (see `MatmulPrecision.bf16Unavailable`).
    public var precision: MatmulPrecision
    /// The library that runs the GEMMs; nil for the default (`NEBULA_BLAS`, else the best one installed).
    public var gemmBackend: GEMMBackend?

    public init(threads: Int = Parallel.defaultThreads, precision: MatmulPrecision = .fp32, gemmBackend: GEMMBackend? = nil) {
        self.threads = max(1, threads)
        self.precision = precision
        self.gemmBackend = gemmBackend
    }

    /// The context of the calling task or thread (the defaults where none is bound).
    @TaskLocal public static var current = ExecutionContext()

    /// Runs `body` with this context bound; the previous one returns afterwards.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        try Self.$current.withValue(self, operation: body)
    }

    /// Runs `body` with this context bound, for `body` and the child tasks it starts.
    public func run<R>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R) async rethrows -> R {
        try await Self.$current.withValue(self, operation: body, isolation: isolation)
    }
}

/// The precision of the large matrix products (linear layers and `matmul`, forward and backward).
///
/// `.fp32` is the default. `.bf16` rounds both operands of each product to bfloat16 and accumulates in fp32,
/// through oneDNN's matmul primitive: about twice the arithmetic rate on CPUs with AVX-512 BF16 or AMX.
/// Weights, gradients and optimizer state stay fp32 (mixed precision); attention's per-head products, norms
/// and everything elementwise stay fp32 too.
public enum MatmulPrecision: String, CaseIterable, Sendable {
    case fp32, bf16
}

/// The library that runs Nebula's GEMMs. Every backend is called one product at a time on one thread;
/// Nebula splits large products over its own workers (NebulaTensor's `sgemm`).
///
/// Chosen by what is installed: oneDNN on Linux x86-64 when `libdnnl.so.2` loads (it is opened at run time,
/// not linked), else OpenBLAS; Accelerate on macOS. The environment variable `NEBULA_BLAS=onednn|openblas`
/// overrides the choice; NebulaTensor's `GEMMBackend.fromEnvironment()` checks it.
public enum GEMMBackend: String, CaseIterable, Sendable {
    case onednn, openblas, accelerate
}
