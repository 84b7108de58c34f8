import ArgumentParser
import Foundation
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
            Embed.self,
            Decode.self,
            Interpolate.self,
            Serve.self,
            Reconstruct.self,
            Inspect.self,
            Export.self,
            WriteReport.self,
            TokenizerCommand.self,
            Doctor.self
        ] + mpiCommands
    )

    /// Runs the command. Every failure ends with exit status 1 and one line on standard error: a command's own
    /// errors (`reportingErrors`) and mistakes in the arguments alike (ArgumentParser would print the usage
    /// and exit 64). `--help` and `--version` print as usual.
    static func main() {
        let backend: GEMMBackend
        do {
            backend = try GEMMBackend.fromEnvironment()
        } catch {
            FileHandle.standardError.write(Data("nebula: error: \(error)\n".utf8))
            exit(withError: ExitCode.failure)
        }
        tuneAllocatorForTensors()
        GEMMBackend.relaunchIfOpenBLASFallsBack()
        _ = processGroup  // under mpirun: MPI starts, ranks other than 0 go quiet
        do {
            var command = try parseAsRoot()
            try ExecutionContext(for: command, backend: backend).run { try command.run() }
        } catch let error as ExitCode {
            exit(withError: error)  // already reported on its own line
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) }
            let path = CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }.prefix(2)
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(
                Data("nebula: error: \(message) (see nebula \((path + ["--help"]).joined(separator: " ")))\n".utf8))
            exit(withError: ExitCode.failure)
        }
    }
}
