import Foundation

/// oneDNN's GEMM, loaded at run time with `dlopen`: the backend is chosen by what is installed, with no
/// build-time link dependency, so one binary runs oneDNN's JIT kernels (picked from the CPU's flags) where
/// `libdnnl.so.2` is present and OpenBLAS where it is not (arm64, or `libdnnl-dev` not installed).
/// Sendable though it holds a raw handle: every field is immutable once `dlopen` and `dlsym` have filled it in,
/// and oneDNN's functions may be called from any thread.
struct OneDNN: @unchecked Sendable {
    typealias SGEMM =
        @convention(c) (
            CChar, CChar, Int64, Int64, Int64, Float, UnsafePointer<Float>, Int64,
            UnsafePointer<Float>, Int64, Float, UnsafeMutablePointer<Float>, Int64
        ) -> Int32
    typealias Version = @convention(c) () -> UnsafeRawPointer
    typealias EffectiveISA = @convention(c) () -> UInt32
    typealias SetThreads = @convention(c) (Int32) -> Void

    static let libraryName = "libdnnl.so.2"

    /// The loaded library, or why it could not be loaded.
    private static let loaded: Result<OneDNN, LoadFailure> = {
        #if os(Linux)
            return Result { () throws(LoadFailure) in try load() }
        #else
            return .failure(LoadFailure(message: "oneDNN is loaded on Linux only"))
        #endif
    }()

    private struct LoadFailure: Error, Sendable { let message: String }

    private static func load() throws(LoadFailure) -> OneDNN {
        // oneDNN threads with OpenMP. Nebula's workers call GEMMs concurrently and split large ones themselves,
        // so each call runs on one thread (as OpenBLAS does); libgomp reads this when `dlopen` loads it.
        setenv("OMP_NUM_THREADS", "1", 1)
        guard let handle = dlopen(libraryName, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadFailure(message: "\(libraryName) not found (apt-get install libdnnl-dev)")
        }
        func symbol<F>(_ name: String, _: F.Type) throws(LoadFailure) -> F {
            guard let pointer = dlsym(handle, name) else { throw LoadFailure(message: "\(libraryName) has no \(name)") }
            return unsafeBitCast(pointer, to: F.self)
        }
        return OneDNN(
            handle: handle, sgemm: try symbol("dnnl_sgemm", SGEMM.self), version: try symbol("dnnl_version", Version.self),
            effectiveISA: try symbol("dnnl_get_effective_cpu_isa", EffectiveISA.self),
            setThreads: try symbol("omp_set_num_threads", SetThreads.self))
    }

    /// The loaded library (`nil` when it is not installed).
    static var library: OneDNN? { try? loaded.get() }

    /// Why the library could not be loaded (`nil` when it was).
    static var loadFailure: String? {
        if case .failure(let failure) = loaded { failure.message } else { nil }
    }

    /// The `dlopen` handle, for the symbols other parts look up (the bf16 matmul primitive).
    let handle: UnsafeMutableRawPointer
    /// `dnnl_sgemm`: row-major, returns 0 on success.
    let sgemm: SGEMM
    let version: Version
    let effectiveISA: EffectiveISA
    /// `omp_set_num_threads`: the OpenMP thread count of the calling thread's next parallel regions.
    let setThreads: SetThreads

    /// "2.6.3": major, minor and patch, the first three `int`s of `dnnl_version_t`.
    var versionString: String {
        let v = version()
        return (0..<3).map { String(v.load(fromByteOffset: 4 * $0, as: Int32.self)) }.joined(separator: ".")
    }

    /// Whether oneDNN's kernels here have native bfloat16 dot products (AVX-512 BF16 or AMX).
    var hasNativeBF16: Bool { effectiveISA() & 0xe7 == 0xe7 }

    /// The instruction set oneDNN's kernels use on this CPU, named as in `dnnl_cpu_isa_t`.
    var isaName: String {
        let names: [UInt32: String] = [
            0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0x407: "avx2_vnni", 0xf: "avx512_mic", 0x1f: "avx512_mic_4ops",
            0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx"
        ]
        let isa = effectiveISA()
        return names[isa] ?? String(format: "isa 0x%x", isa)
    }
}
