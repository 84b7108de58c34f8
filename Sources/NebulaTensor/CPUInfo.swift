import Foundation

/// The CPU as Linux's `/proc/cpuinfo` describes it (empty on other systems).
public struct CPUInfo: Sendable {
    /// The first processor's model name ("AMD EPYC 9R14").
    public let model: String
    /// Its feature flags ("avx2", "avx512f", "avx512_bf16", "amx_tile", …).
    public let flags: Set<String>

    /// This machine's CPU.
    public static let current = CPUInfo(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")

    /// Reads the first `model name` and `flags` lines of `/proc/cpuinfo` text.
    public init(cpuinfo: String) {
        func field(_ name: String) -> String {
            let line = cpuinfo.split(separator: "\n").first { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == name }
            return line.flatMap { $0.split(separator: ":", maxSplits: 1).dropFirst().first }?.trimmingCharacters(in: .whitespaces) ?? ""
        }
        model = field("model name")
        flags = Set(field("flags").split(separator: " ").map(String.init))
    }
}
