import ArgumentParser
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
            LengthBench.self,
        ]
    )

    static func main() {
        GEMMBackend.relaunchIfOpenBLASFallsBack()
        main(nil)
    }
}
