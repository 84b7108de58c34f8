import Foundation
#if canImport(Accelerate)
    import Accelerate
#else
    import CBLAS
#endif

extension GEMMBackend {
    /// The backends usable in this process, the default first.
    public static let available: [GEMMBackend] = {
        #if canImport(Accelerate)
            return [.accelerate]
        #else
            let oneDNN: [GEMMBackend] = OneDNN.library == nil ? [] : [.onednn]
            #if arch(x86_64)
                return oneDNN + [.openblas]  // oneDNN's JIT kernels follow the CPU's flags
            #else
                return [.openblas] + oneDNN
            #endif
        #endif
    }()

    /// The backend the current ``ExecutionContext`` names, else ``default``.
    public static var current: GEMMBackend { ExecutionContext.current.gemmBackend ?? .default }

    /// The backend of contexts that name none: `NEBULA_BLAS` when it names a usable one, else the first of
    /// ``available``. A program that honours `NEBULA_BLAS` checks it with ``fromEnvironment()`` at start.
    public static let `default`: GEMMBackend = (try? fromEnvironment()) ?? available[0]

    /// The backend `NEBULA_BLAS` names (the default when it is unset or empty).
    /// - Throws: ``GEMMBackendError`` when it names an unknown backend or one not usable here.
    public static func fromEnvironment() throws(GEMMBackendError) -> GEMMBackend {
        try named(ProcessInfo.processInfo.environment["NEBULA_BLAS"])
    }

    /// The backend a `NEBULA_BLAS` value names; `nil` or empty is the default.
    /// - Throws: ``GEMMBackendError`` when the name is unknown or the backend is not usable here.
    public static func named(_ value: String?) throws(GEMMBackendError) -> GEMMBackend {
        guard let value, !value.isEmpty else { return available[0] }
        guard let backend = GEMMBackend(rawValue: value.lowercased()) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            throw GEMMBackendError(value: value, "unknown GEMM backend (one of \(names))")
        }
        guard available.contains(backend) else {
            throw GEMMBackendError(value: value, backend.unavailableReason)
        }
        return backend
    }

    private var unavailableReason: String {
        switch self {
        case .onednn: OneDNN.loadFailure ?? ""
        case .openblas: "OpenBLAS is not linked on macOS (Accelerate is)"
        case .accelerate: "Accelerate exists on macOS only"
        }
    }

    /// The library and its version, for an available backend: "oneDNN 2.6.3", OpenBLAS's build configuration.
    public var version: String {
        switch self {
        case .onednn: "oneDNN " + (OneDNN.library?.versionString ?? "")
        case .openblas: openBLASConfig
        case .accelerate: "Accelerate"
        }
    }

    /// The kernels the library picked for this CPU, for an available backend: oneDNN's effective ISA,
    /// OpenBLAS's core name.
    public var kernels: String {
        switch self {
        case .onednn: OneDNN.library?.isaName ?? ""
        case .openblas: openBLASCoreName
        case .accelerate: "vecLib"
        }
    }

    /// Sets how many threads the library itself uses for one product (Nebula keeps 1); measurements raise it
    /// to time the library's own threading. For oneDNN it applies to the calling thread only.
    func setLibraryThreads(_ count: Int) {
        switch self {
        case .onednn: OneDNN.library?.setThreads(Int32(count))
        case .openblas:
            #if !canImport(Accelerate)
                _ = openBLASReady
                openblas_set_num_threads(Int32(count))
            #endif
        case .accelerate: break  // Accelerate manages its own threads
        }
    }

    /// One row-major GEMM call into the library, `C = alpha · op(A) · op(B) + beta · C`; `k` must be positive.
    @inline(__always)
    func gemm(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        switch self {
        case .onednn:
            let (opA, opB) = (CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")))
            let status = OneDNN.library!.sgemm(
                opA, opB, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb),
                beta, c, Int64(ldc))
            precondition(status == 0, "dnnl_sgemm failed with status \(status) (\(m)×\(n)×\(k))")
        case .openblas, .accelerate:
            _ = openBLASReady
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
}

/// Why a `NEBULA_BLAS` value cannot be used.
public struct GEMMBackendError: Error, Equatable, CustomStringConvertible {
    /// The value asked for.
    public let value: String
    /// What is wrong with it, with the fix where there is one.
    public let message: String

    init(value: String, _ message: String) {
        self.value = value
        self.message = message
    }

    public var description: String { "NEBULA_BLAS=\(value): \(message)" }
}

/// OpenBLAS's own threads stay at 1 (Nebula splits products itself). When OpenBLAS picked a generic
/// kernel set on a modern CPU, library use says so once; the executables re-run themselves with the
/// right core instead (``GEMMBackend/relaunchIfOpenBLASFallsBack()``).
private let openBLASReady: Void = {
    #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        if let advice = GEMMBackend.openBLASAdvice {
            FileHandle.standardError.write(Data("nebula: warning: \(advice.message)\n".utf8))
        }
    #endif
}()
