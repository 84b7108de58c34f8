import ArgumentParser
import Foundation
import NebulaTensor

/// `nebula doctor`: what runs Nebula's GEMMs on this machine and how fast — the backend, its version and
/// the kernels it picked, the CPU and its vector extensions, a warning when OpenBLAS fell back to generic
/// kernels, and a one-second GEMM measurement of every available backend.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the GEMM backend, the CPU's vector extensions and a quick GEMM measurement.",
        discussion: "NEBULA_BLAS=onednn|openblas chooses the backend; by default oneDNN is used where libdnnl.so.2 is installed."
    )

    /// The CPU flags that decide which kernels a library can use.
    static let relevantFlags = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]

    /// The GEMMs measured: a large square one and a GPT MLP's (768 rows, width 128).
    static let shapes = [(m: 1024, n: 1024, k: 1024), (m: 768, n: 512, k: 128)]

    func run() {
        let cpu = CPUInfo.current, current = GEMMBackend.current
        print("Nebula \(Nebula.configuration.version)")
        print(row("CPU", "\(cpu.model.isEmpty ? "unknown" : cpu.model), \(Parallel.workerCount) workers"))
        let missing = Self.relevantFlags.filter { !cpu.flags.contains($0) }
        print(
            row(
                "CPU flags",
                Self.relevantFlags.filter(cpu.flags.contains).joined(separator: " ")
                    + (missing.isEmpty ? "" : "; without " + missing.joined(separator: " "))))
        let choice = ProcessInfo.processInfo.environment["NEBULA_BLAS"].map { "NEBULA_BLAS=\($0)" } ?? "default"
        print(
            row(
                "GEMM backend",
                "\(current.rawValue) (\(choice); available: \(GEMMBackend.available.map(\.rawValue).joined(separator: ", ")))"))
        print(row("threads", "Nebula splits large GEMMs over \(Parallel.workerCount) workers; each library call runs on 1 thread"))
        for backend in GEMMBackend.available {
            print(row("  " + backend.rawValue, "\(backend.version); kernels \(backend.kernels)"))
        }
        if let chosen = GEMMBackend.openBLASRelaunchedFrom {
            print(
                row(
                    "relaunched",
                    "OpenBLAS had chosen its \(chosen) kernels; re-ran with OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "")"
                ))
        }
        if GEMMBackend.available.contains(.openblas), let advice = GEMMBackend.openBLASAdvice {
            print("warning: " + advice.message)
        }

        print("")
        print(
            row(
                "GFLOP/s",
                Self.shapes.map { pad("\($0.m)×\($0.n)×\($0.k)", 16) }.joined() + "(Nebula's sgemm, \(Parallel.workerCount) workers)"))
        for backend in GEMMBackend.available {
            let figures = Self.shapes.map { backend.gigaflops(m: $0.m, n: $0.n, k: $0.k, seconds: 0.25) }
            print(row("  " + backend.rawValue, figures.map { pad(String(format: "%.1f", $0), 16) }.joined()))
        }
    }

    func row(_ label: String, _ value: String) -> String { pad(label, 16) + value }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
