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

/// The text of a file given on the command line; throws one line naming it when it cannot be read.
func readText(_ path: String) throws -> String {
    let url = fileURL(path)
    guard let data = FileManager.default.contents(atPath: url.path) else {
        var isFolder: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
        throw CommandError("\(path): cannot read (\(exists ? (isFolder.boolValue ? "a folder, not a file" : "permission denied") : "no such file"))")
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
