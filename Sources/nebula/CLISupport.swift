import ArgumentParser
import Foundation

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
        FileHandle.standardError.write(Data("nebula: error: \(message)\n".utf8))
        throw ExitCode.failure
    }
}

/// Writes a warning line to standard error.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("nebula: warning: \(message)\n".utf8))
}

/// A path argument as a file URL.
func fileURL(_ path: String) -> URL { URL(fileURLWithPath: (path as NSString).expandingTildeInPath) }

/// A failure found while running a command (not a usage error): reported as one line, exit status 1.
struct CommandError: LocalizedError {
    let message: String
    init(_ message: String) { self.message = message }
    var errorDescription: String? { message }
}
