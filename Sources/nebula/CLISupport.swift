import ArgumentParser
import Foundation
import NebulaNN
import NebulaTensor
#if canImport(NebulaMPI)
    import NebulaMPI
#endif

/// Runs a command body; any error becomes one line on standard error (`nebula: error: …`) and exit
/// status 1 — never a stack trace.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
        let prefix = (processGroup?.size ?? 1) > 1 ? "nebula (rank \(processGroup!.rank)): error: " : "nebula: error: "
        errorOutput.write(Data((prefix + message + "\n").utf8))
        if let processGroup, processGroup.size > 1 { processGroup.abort(code: 1) }  // the other ranks must not wait
        throw ExitCode.failure
    }
}

/// The ranks of this run when `nebula` was built with MPI (`make build-mpi`) and started by `mpirun`;
/// nil for one process. The training commands hand it to their `Trainer`.
/// Ranks other than 0 print nothing (their standard output and error go to /dev/null); their errors still
/// reach the terminal through `errorOutput`.
let processGroup: ProcessGroup? = {
    #if canImport(NebulaMPI)
        guard let group = MPIProcessGroup.fromLauncher() else { return nil }
        if group.rank != 0 {
            errorOutput = FileHandle(fileDescriptor: dup(2), closeOnDealloc: true)
            let null = open("/dev/null", O_WRONLY)
            dup2(null, 1)
            dup2(null, 2)
            close(null)
        }
        return group
    #else
        return nil
    #endif
}()

/// Where command errors are written: standard error, or its saved copy on a silenced rank.
/// Unchecked, and safe: it is assigned once, by `processGroup`'s initialiser, which `Nebula.main` runs first,
/// before any other thread exists; afterwards it is only read.
nonisolated(unsafe) var errorOutput = FileHandle.standardError

/// Whether this process writes files and prints progress: rank 0 of a data-parallel run, or a lone process.
var isLeadProcess: Bool { (processGroup?.rank ?? 0) == 0 }

/// Options that choose how the engine runs (`--precision`, `--threads`). `Nebula.main` runs each command inside an
/// ``ExecutionContext`` that every such option group of the command (a stored `@OptionGroup`) has configured.
protocol ChoosesExecution {
    func configure(_ context: inout ExecutionContext)
}

extension OptionGroup: ChoosesExecution where Value: ChoosesExecution {
    func configure(_ context: inout ExecutionContext) { wrappedValue.configure(&context) }
}

extension ExecutionContext {
    /// The context `command` runs in: `backend`, configured by each of the command's option groups.
    init(for command: any ParsableCommand, backend: GEMMBackend) {
        self.init(gemmBackend: backend)
        for option in Mirror(reflecting: command).children {
            (option.value as? any ChoosesExecution)?.configure(&self)
        }
    }
}

/// `--precision` for every command that runs a model; bf16 where the CPU lacks native support falls back to fp32
/// with a warning.
struct PrecisionOptions: ParsableArguments, ChoosesExecution {
    @Option(
        help:
            "Precision of the linear layers' products: fp32, or bf16 (bfloat16 operands, fp32 accumulation; weights and optimizer state stay fp32). About 1.4× faster on CPUs with AVX-512 BF16; elsewhere fp32 is used, with a warning."
    )
    var precision = MatmulPrecision.fp32

    func validate() throws {
        if precision == .bf16, let reason = MatmulPrecision.bf16Unavailable { warn("--precision bf16: \(reason); using fp32") }
    }

    func configure(_ context: inout ExecutionContext) { context.precision = precision }
}

extension MatmulPrecision: ExpressibleByArgument {}

/// Writes a warning line to standard error.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("nebula: warning: \(message)\n".utf8))
}

/// The text of a file given on the command line; throws one line naming it when it cannot be read.
func readText(_ path: String) throws -> String {
    let url = fileURL(path)
    guard let data = FileManager.default.contents(atPath: url.path) else {
        var isFolder: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
        throw CommandError(
            "\(path): cannot read (\(exists ? (isFolder.boolValue ? "a folder, not a file" : "permission denied") : "no such file"))")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw CommandError("\(path): not UTF-8 text") }
    return text
}

/// A path argument as a file URL.
func fileURL(_ path: String) -> URL { URL(fileURLWithPath: (path as NSString).expandingTildeInPath) }

/// A failure found while running a command (not a usage error): reported as one line, exit status 1.
struct CommandError: LocalizedError {
    let message: String
    init(_ message: String) { self.message = message }
    var errorDescription: String? { message }
}
