import ArgumentParser
import Foundation
import NebulaTensor

@main
struct NebulaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nebula-bench",
        abstract: "Nebula's benchmarks.",
        subcommands: [
            EngineBench.self,
            TrainingBench.self,
            TokenizerBench.self,
            GenerateBench.self,
            SampleBench.self,
            PlotBench.self,
            LengthBench.self
        ]
    )

    static func main() {
        let backend: GEMMBackend
        do {
            backend = try GEMMBackend.fromEnvironment()
        } catch {
            FileHandle.standardError.write(Data("nebula-bench: error: \(error)\n".utf8))
            exit(withError: ExitCode.failure)
        }
        tuneAllocatorForTensors()
        GEMMBackend.relaunchIfOpenBLASFallsBack()
        do {
            var command = try parseAsRoot()
            try ExecutionContext(gemmBackend: backend).run { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}
