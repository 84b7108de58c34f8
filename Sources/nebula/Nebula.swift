import ArgumentParser
import NebulaTensor

/// The `nebula` command: one subcommand group per stage of the system.
@main
struct Nebula: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nebula",
        abstract: "Latent diffusion language models on the CPU: tokenizers, language models, autoencoders, denoisers.",
        version: "0.4.0",
        subcommands: [
            Train.self,
            Eval.self,
            Generate.self,
            Edit.self,
            Sample.self,
            Encode.self,
            Decode.self,
            Interpolate.self,
            Serve.self,
            Reconstruct.self,
            Inspect.self,
            Export.self,
            WriteReport.self,
            TokenizerCommand.self,
            Doctor.self,
        ]
    )

    static func main() {
        GEMMBackend.relaunchIfOpenBLASFallsBack()
        main(nil)
    }
}
