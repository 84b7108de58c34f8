import Foundation
import Synchronization

extension MatmulPrecision {
    /// The precision the current ``ExecutionContext`` asks for, where it can run: bf16 runs only with the oneDNN
    /// backend on a CPU with native bf16 arithmetic (``bf16Unavailable`` is nil); elsewhere products run in fp32.
    public static var current: MatmulPrecision {
        let context = ExecutionContext.current
        return context.precision == .bf16 && (context.gemmBackend ?? .default) == .onednn && BF16Matmul.runsNatively ? .bf16 : .fp32
    }

    /// Why bf16 products cannot run natively here, or nil when they can.
    public static var bf16Unavailable: String? {
        guard GEMMBackend.current == .onednn, let library = OneDNN.library else {
            return "they need the oneDNN backend (libdnnl-dev); the backend is \(GEMMBackend.current.rawValue)"
        }
        guard library.hasNativeBF16 else {
            return "this CPU has no AVX-512 BF16 or AMX (oneDNN's kernels: \(library.isaName))"
        }
        return BF16Matmul.shared == nil ? "oneDNN \(library.versionString) lacks the matmul primitive's functions" : nil
    }
}

/// bfloat16 GEMMs through oneDNN's matmul primitive (C API, looked up in the library `OneDNN` opened).
/// A primitive is JIT-compiled once per shape, layout and accumulation mode, and cached; each call converts
/// its operands to bfloat16 and runs one primitive per block of C on Nebula's workers, as `sgemm` does.
final class BF16Matmul: @unchecked Sendable {
    static let shared: BF16Matmul? = OneDNN.library.flatMap { try? BF16Matmul(handle: $0.handle) }
    /// Whether bf16 products can run here: oneDNN loaded with its matmul functions, on a CPU with native bf16.
    static let runsNatively = shared != nil && OneDNN.library?.hasNativeBF16 == true

    private typealias Status = Int32
    private typealias Object = OpaquePointer?
    private let engineCreate: @convention(c) (UnsafeMutablePointer<Object>, Int32, Int) -> Status
    private let streamCreate: @convention(c) (UnsafeMutablePointer<Object>, Object, UInt32) -> Status
    private let streamDestroy: @convention(c) (Object) -> Status
    private let memoryDescInitByStrides:
        @convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<Int64>, Int32, UnsafePointer<Int64>) -> Status
    private let memoryDescGetSize: @convention(c) (UnsafeRawPointer) -> Int
    private let matmulDescInit:
        @convention(c) (UnsafeMutableRawPointer, UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer?, UnsafeRawPointer) -> Status
    private let attrCreate: @convention(c) (UnsafeMutablePointer<Object>) -> Status
    private let attrDestroy: @convention(c) (Object) -> Status
    private let attrSetScratchpadMode: @convention(c) (Object, Int32) -> Status
    private let attrSetPostOps: @convention(c) (Object, Object) -> Status
    private let postOpsCreate: @convention(c) (UnsafeMutablePointer<Object>) -> Status
    private let postOpsAppendSum: @convention(c) (Object, Float) -> Status
    private let postOpsDestroy: @convention(c) (Object) -> Status
    private let primitiveDescCreate: @convention(c) (UnsafeMutablePointer<Object>, UnsafeRawPointer, Object, Object, Object) -> Status
    private let primitiveDescQueryMD: @convention(c) (Object, Int32, Int32) -> UnsafeRawPointer?
    private let primitiveCreate: @convention(c) (UnsafeMutablePointer<Object>, Object) -> Status
    private let memoryCreate: @convention(c) (UnsafeMutablePointer<Object>, UnsafeRawPointer, Object, UnsafeMutableRawPointer?) -> Status
    private let memoryDestroy: @convention(c) (Object) -> Status
    private let primitiveExecute: @convention(c) (Object, Object, Int32, UnsafeRawPointer) -> Status
    private let streamWait: @convention(c) (Object) -> Status

    // oneDNN's constants (dnnl_types.h, 2.x).
    private static let (cpuEngine, inOrderStream, bf16, f32) = (Int32(1), UInt32(1), Int32(2), Int32(3))
    private static let (userScratchpad, scratchpadQuery) = (Int32(1), Int32(136))
    private static let (argSource, argWeights, argDestination, argScratchpad) = (Int32(1), Int32(33), Int32(17), Int32(80))
    /// `dnnl_memory_desc_t` is 696 bytes and `dnnl_matmul_desc_t` 2,800 in oneDNN 2.6; both are opaque here.
    private static let (memoryDescBytes, matmulDescBytes) = (2048, 8192)

    private var engine: Object = nil

    /// One compiled product: `[M, K] · [K, N]` (+ C when accumulating) with the given strides.
    private struct Key: Hashable {
        let m, n, k: Int
        let aStrides, bStrides: [Int64]
        let ldc: Int
        let accumulate: Bool
    }
    private struct Compiled: @unchecked Sendable {
        let primitive: OpaquePointer
        let a, b, c: UnsafeMutableRawPointer  // their memory descriptors
        let scratchpad: UnsafeRawPointer?
        let scratchpadBytes: Int
    }
    private let compiled = Mutex<[Key: Compiled]>([:])

    private init(handle: UnsafeMutableRawPointer) throws {
        struct Missing: Error {}
        func symbol<F>(_ name: String, _: F.Type = F.self) throws -> F {
            guard let pointer = dlsym(handle, name) else { throw Missing() }
            return unsafeBitCast(pointer, to: F.self)
        }
        engineCreate = try symbol("dnnl_engine_create")
        streamCreate = try symbol("dnnl_stream_create")
        streamDestroy = try symbol("dnnl_stream_destroy")
        memoryDescInitByStrides = try symbol("dnnl_memory_desc_init_by_strides")
        memoryDescGetSize = try symbol("dnnl_memory_desc_get_size")
        matmulDescInit = try symbol("dnnl_matmul_desc_init")
        attrCreate = try symbol("dnnl_primitive_attr_create")
        attrDestroy = try symbol("dnnl_primitive_attr_destroy")
        attrSetScratchpadMode = try symbol("dnnl_primitive_attr_set_scratchpad_mode")
        attrSetPostOps = try symbol("dnnl_primitive_attr_set_post_ops")
        postOpsCreate = try symbol("dnnl_post_ops_create")
        postOpsAppendSum = try symbol("dnnl_post_ops_append_sum")
        postOpsDestroy = try symbol("dnnl_post_ops_destroy")
        primitiveDescCreate = try symbol("dnnl_primitive_desc_create")
        primitiveDescQueryMD = try symbol("dnnl_primitive_desc_query_md")
        primitiveCreate = try symbol("dnnl_primitive_create")
        memoryCreate = try symbol("dnnl_memory_create")
        memoryDestroy = try symbol("dnnl_memory_destroy")
        primitiveExecute = try symbol("dnnl_primitive_execute")
        streamWait = try symbol("dnnl_stream_wait")
        guard engineCreate(&engine, Self.cpuEngine, 0) == 0 else { throw Missing() }
    }

    /// `C = op(A)·op(B) (+ C)` with both operands rounded to bfloat16: the same contract as `sgemm` with
    /// alpha 1 and beta 0 or 1. `roundedB`, when given, is B already rounded and packed (`ldb` = its row length).
    func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, roundedB: UnsafePointer<UInt16>? = nil,
        accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // Packed bfloat16 copies in the operands' own layouts: op(A) [M, K] is stored [M, K] or, transposed, [K, M].
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        precondition(roundedB == nil || ldb == bColumns, "BF16Matmul: a rounded B must be packed")
        let packedA = UnsafeMutablePointer<UInt16>.allocate(capacity: aRows * aColumns)
        let packedB = roundedB == nil ? UnsafeMutablePointer<UInt16>.allocate(capacity: bRows * bColumns) : nil
        defer { packedA.deallocate(); packedB?.deallocate() }
        roundToBFloat16(a, rows: aRows, columns: aColumns, leading: lda, into: packedA)
        if let packedB { roundToBFloat16(b, rows: bRows, columns: bColumns, leading: ldb, into: packedB) }
        let roundedB = roundedB ?? UnsafePointer(packedB!)
        // Element strides of op(A) [M, K] and op(B) [K, N] in the packed copies.
        let aStrides: [Int64] = transposeA ? [1, Int64(m)] : [Int64(k), 1]
        let bStrides: [Int64] = transposeB ? [1, Int64(k)] : [Int64(n), 1]
        func run(rows: Range<Int>, columns: Range<Int>) {
            let key = Key(m: rows.count, n: columns.count, k: k, aStrides: aStrides, bStrides: bStrides, ldc: ldc, accumulate: accumulate)
            let aBlock = packedA + rows.lowerBound * Int(aStrides[0])
            let bBlock = roundedB + columns.lowerBound * Int(bStrides[1])
            execute(primitive(for: key), a: aBlock, b: bBlock, c: c + rows.lowerBound * ldc + columns.lowerBound)
        }
        let workers = Parallel.workerCount
        if workers > 1 && max(m, n) >= 32 * workers {
            if m >= n {
                Parallel.forRanges(m, grain: 16) { run(rows: $0, columns: 0..<n) }
            } else {
                Parallel.forRanges(n, grain: 16) { run(rows: 0..<m, columns: $0) }
            }
        } else {
            run(rows: 0..<m, columns: 0..<n)
        }
    }

    private func primitive(for key: Key) -> Compiled {
        if let found = compiled.withLock({ $0[key] }) { return found }
        func descriptor(_ rows: Int, _ columns: Int, _ type: Int32, _ strides: [Int64]) -> UnsafeMutableRawPointer {
            let md = UnsafeMutableRawPointer.allocate(byteCount: Self.memoryDescBytes, alignment: 64)
            md.initializeMemory(as: UInt8.self, repeating: 0, count: Self.memoryDescBytes)
            let dims = [Int64(rows), Int64(columns)] + [Int64](repeating: 0, count: 10)
            let strides12 = strides + [Int64](repeating: 0, count: 10)
            check(memoryDescInitByStrides(md, 2, dims, type, strides12), "memory descriptor")
            return md
        }
        let a = descriptor(key.m, key.k, Self.bf16, key.aStrides)
        let b = descriptor(key.k, key.n, Self.bf16, key.bStrides)
        let c = descriptor(key.m, key.n, Self.f32, [Int64(key.ldc), 1])
        let matmul = UnsafeMutableRawPointer.allocate(byteCount: Self.matmulDescBytes, alignment: 64)
        defer { matmul.deallocate() }
        check(matmulDescInit(matmul, a, b, nil, c), "matmul descriptor")
        var attributes: Object = nil, postOps: Object = nil
        check(attrCreate(&attributes), "attributes")
        defer { _ = attrDestroy(attributes) }
        check(attrSetScratchpadMode(attributes, Self.userScratchpad), "scratchpad mode")
        if key.accumulate {
            check(postOpsCreate(&postOps), "post-ops")
            check(postOpsAppendSum(postOps, 1), "sum post-op")
            check(attrSetPostOps(attributes, postOps), "post-ops")
            _ = postOpsDestroy(postOps)
        }
        var description: Object = nil, primitive: Object = nil
        check(primitiveDescCreate(&description, matmul, attributes, engine, nil), "primitive descriptor for \(key)")
        check(primitiveCreate(&primitive, description), "primitive")
        let scratchpad = primitiveDescQueryMD(description, Self.scratchpadQuery, 0)
        let bytes = scratchpad.map(memoryDescGetSize) ?? 0
        // The descriptor (and the scratchpad's memory descriptor it owns) lives as long as the cache.
        let entry = Compiled(primitive: primitive!, a: a, b: b, c: c, scratchpad: bytes > 0 ? scratchpad : nil, scratchpadBytes: bytes)
        return compiled.withLock { cache in
            if let raced = cache[key] { return raced }  // another thread compiled it meanwhile; keep one
            cache[key] = entry
            return entry
        }
    }

    /// Runs a compiled product on this thread, with its own stream and scratchpad (so threads never share either).
    private func execute(_ entry: Compiled, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>) {
        var stream: Object = nil
        check(streamCreate(&stream, engine, Self.inOrderStream), "stream")
        defer { _ = streamDestroy(stream) }
        let scratch = entry.scratchpadBytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: entry.scratchpadBytes, alignment: 64) : nil
        defer { scratch?.deallocate() }
        var memories: [Object] = [nil, nil, nil, nil]
        check(memoryCreate(&memories[0], entry.a, engine, UnsafeMutableRawPointer(mutating: a)), "memory")
        check(memoryCreate(&memories[1], entry.b, engine, UnsafeMutableRawPointer(mutating: b)), "memory")
        check(memoryCreate(&memories[2], entry.c, engine, UnsafeMutableRawPointer(c)), "memory")
        var arguments: [(Int32, Object)] = [
            (Self.argSource, memories[0]), (Self.argWeights, memories[1]), (Self.argDestination, memories[2])
        ]
        if let scratchpad = entry.scratchpad {
            check(memoryCreate(&memories[3], scratchpad, engine, scratch), "memory")
            arguments.append((Self.argScratchpad, memories[3]))
        }
        defer { for memory in memories where memory != nil { _ = memoryDestroy(memory) } }
        // dnnl_exec_arg_t is { int arg; dnnl_memory_t memory; }: 16 bytes with padding.
        var packed = [UInt64](repeating: 0, count: 2 * arguments.count)
        for (i, (argument, memory)) in arguments.enumerated() {
            packed[2 * i] = UInt64(UInt32(bitPattern: argument))
            packed[2 * i + 1] = UInt64(UInt(bitPattern: memory.map { UnsafeRawPointer($0) }))
        }
        packed.withUnsafeBytes { check(primitiveExecute(entry.primitive, stream, Int32(arguments.count), $0.baseAddress!), "execute") }
        check(streamWait(stream), "stream wait")
    }

    private func check(_ status: Status, _ what: @autoclosure () -> String) {
        precondition(status == 0, "oneDNN bf16 matmul: \(what()) failed with status \(status)")
    }
}

/// Rounds a `[rows, columns]` block (row stride `leading`) to bfloat16, to nearest even, packed row by row.
func roundToBFloat16(_ source: UnsafePointer<Float>, rows: Int, columns: Int, leading: Int, into destination: UnsafeMutablePointer<UInt16>)
{
    Parallel.forRanges(rows, grain: max(1, elementwiseGrain / max(columns, 1))) { range in
        for r in range {
            let (from, to) = (source + r * leading, destination + r * columns)
            for j in 0..<columns { to[j] = bfloat16FromFloat(from[j]) }
        }
    }
}

/// Guards every tensor's `roundedCopy` (inference may run on several threads).
private let roundedCopies = Mutex<Void>(())

extension Tensor {
    /// The elements rounded to bfloat16, made once and kept until the values change.
    func roundedToBFloat16() -> [UInt16] {
        roundedCopies.withLock { _ in
            if let roundedCopy { return roundedCopy }
            let rounded = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
                data.withUnsafeBufferPointer {
                    roundToBFloat16($0.baseAddress!, rows: 1, columns: count, leading: count, into: buffer.baseAddress!)
                }
                initialized = count
            }
            roundedCopy = rounded
            return rounded
        }
    }
}
