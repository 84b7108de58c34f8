import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A file that could not be written (full disk, no permission, missing folder). Its description is one line
/// naming the file and the system's reason, e.g. `runs/lm/model.safetensors: cannot write (No space left on device)`.
public struct FileWriteError: Error, LocalizedError, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var errorDescription: String? { "\(path): cannot write (\(reason))" }
}

/// Writes a file so that a crash, a `kill -9` or a full disk at any instant leaves either the old file or the
/// new one, whole: the bytes go to a temporary file beside `url`, are flushed to the disk (`fsync`), and the
/// temporary file is renamed over `url`; then the folder itself is flushed, so the rename survives a power
/// cut. On any failure the temporary file is removed and the old file is untouched.
///
/// ```swift
/// try DurableFile.write(Data("{}".utf8), to: url)
/// try DurableFile.write(to: url) { file in for chunk in chunks { try file.append(chunk) } }
/// ```
public final class DurableFile {
    private let descriptor: Int32
    private let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// Appends `data` to the temporary file.
    public func append(_ data: Data) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
                }
                offset += written
            }
        }
    }

    /// Writes `data` as the whole new content of `url`.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.append(data) }
    }

    /// Writes the new content of `url` through `body`, which appends it in pieces.
    public static func write(to url: URL, _ body: (DurableFile) throws -> Void) throws {
        let folder = url.deletingLastPathComponent().path
        let temporary = "\(folder)/.\(url.lastPathComponent).\(UUID().uuidString).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileWriteError(path: url.relativePath, reason: String(cString: strerror(errno))) }
        var isOpen = true
        do {
            try body(DurableFile(descriptor: descriptor, path: url.relativePath))
            guard fsync(descriptor) == 0 else { throw FileWriteError(path: url.relativePath, reason: String(cString: strerror(errno))) }
            isOpen = false
            guard close(descriptor) == 0 else { throw FileWriteError(path: url.relativePath, reason: String(cString: strerror(errno))) }
        } catch {
            if isOpen { _ = close(descriptor) }
            unlink(temporary)
            throw error
        }
        guard rename(temporary, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FileWriteError(path: url.relativePath, reason: reason)
        }
        let folderDescriptor = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            _ = close(folderDescriptor)
        }
    }

    /// Removes the temporary files that writers killed mid-write left in `folder` (`.<name>.<UUID>.tmp`);
    /// returns how many there were.
    @discardableResult
    public static func removeLeftovers(in folder: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let leftovers = names.filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }
        for name in leftovers { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        return leftovers.count
    }
}
