import Foundation
#if !canImport(Accelerate)
    import CBLAS
#endif

/// OpenBLAS picked one of its generic, older kernel sets on a CPU that has much faster ones. Debian's
/// OpenBLAS 0.3.21 does not recognise some Xeons and silently runs its SSE3 `Prescott` kernels there, at a
/// sixth of the speed; `OPENBLAS_CORETYPE` names the right ones.
public struct OpenBLASCoreAdvice: Equatable, Sendable {
    /// The core OpenBLAS chose ("Prescott").
    public let chosen: String
    /// The core the CPU's flags call for, as an `OPENBLAS_CORETYPE` value ("SkylakeX").
    public let suggested: String

    /// Kernel sets older than AVX2.
    private static let generic: Set<String> = [
        "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn", "dunnington", "nehalem",
        "atom", "sandybridge", "opteron", "barcelona", "bobcat", "athlon", "unknown"
    ]

    /// Advice for OpenBLAS's `core` on a CPU with `flags` (as in `/proc/cpuinfo`); `nil` when the core suits
    /// the CPU. AVX-512 F+BW+VL calls for `SkylakeX` (`Cooperlake` with bf16), AVX2 for `Haswell`.
    public init?(core: String, flags: Set<String>) {
        guard Self.generic.contains(core.lowercased()) else { return nil }
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl"]) {
            suggested = flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        } else if flags.contains("avx2") {
            suggested = "Haswell"
        } else {
            return nil
        }
        chosen = core
    }

    /// One line naming the problem and the fix.
    public var message: String {
        let isa = suggested == "Haswell" ? "AVX2" : "AVX-512"
        return "OpenBLAS runs its generic \(chosen) kernels on a CPU with \(isa): set OPENBLAS_CORETYPE=\(suggested),"
            + " or use oneDNN (NEBULA_BLAS=onednn; apt-get install libdnnl-dev)"
    }
}

extension GEMMBackend {
    /// The fix when OpenBLAS runs generic kernels on this CPU; `nil` when its choice suits the CPU.
    public static var openBLASAdvice: OpenBLASCoreAdvice? {
        OpenBLASCoreAdvice(core: openBLASCoreName, flags: CPUInfo.current.flags)
    }

    /// The core OpenBLAS had chosen before ``relaunchIfOpenBLASFallsBack()`` re-ran this process; `nil` when
    /// it did not.
    public static var openBLASRelaunchedFrom: String? { ProcessInfo.processInfo.environment[relaunchMarker] }

    private static let relaunchMarker = "NEBULA_OPENBLAS_RELAUNCHED_FROM"

    /// Re-runs this executable once, with `OPENBLAS_CORETYPE` set from the CPU's flags, when OpenBLAS is the
    /// backend and runs generic kernels (see ``OpenBLASCoreAdvice``); call it first thing in `main`, before
    /// any output. It does nothing when `OPENBLAS_CORETYPE` is already set (the user's own choice, or the
    /// re-run process); the first GEMM then warns instead.
    public static func relaunchIfOpenBLASFallsBack() {
        #if os(Linux)
            guard current == .openblas, let advice = openBLASAdvice,
                getenv("OPENBLAS_CORETYPE") == nil, getenv(relaunchMarker) == nil
            else { return }
            setenv("OPENBLAS_CORETYPE", advice.suggested, 1)
            setenv(relaunchMarker, advice.chosen, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)  // returns only when it fails
        #endif
    }
}

/// OpenBLAS's name for the kernels it runs ("Cooperlake", "Prescott"); empty where it is not linked.
var openBLASCoreName: String {
    #if canImport(Accelerate)
        return ""
    #else
        return String(cString: openblas_get_corename())
    #endif
}

/// OpenBLAS's build configuration ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64").
var openBLASConfig: String {
    #if canImport(Accelerate)
        return ""
    #else
        return String(cString: openblas_get_config())
    #endif
}
