import Foundation
import NebulaCore

/// How a corpus file is cut into documents and how bad bytes are treated.
public struct CorpusOptions: Sendable, Equatable {
    /// How documents are separated in a `.txt` file.
    public enum Separator: String, Sendable, CaseIterable {
        /// A line holding only `<|endoftext|>` (TinyStories V2, GPT-2 style dumps).
        case endOfText
        /// One or more blank lines.
        case blankLines
        /// Per file: `<|endoftext|>` lines when the file's first 4 MB hold one, else blank lines (a folder
        /// mixing TinyStories V2 and V1 files reads each the right way).
        case auto
    }

    public var separator: Separator
    /// Replace invalid UTF-8 by U+FFFD instead of failing.
    public var replaceInvalidUTF8: Bool

    public init(separator: Separator = .endOfText, replaceInvalidUTF8: Bool = false) {
        self.separator = separator
        self.replaceInvalidUTF8 = replaceInvalidUTF8
    }
}

/// Errors reading a corpus: one line naming the file and where.
public enum CorpusError: LocalizedError, Equatable {
    case unreadable(path: String, reason: String)
    case invalidUTF8(path: String, offset: Int)
    case invalidJSONLine(path: String, line: Int, reason: String)
    /// A line of a line-based file (a labels file) that does not hold what it should.
    case invalidLine(path: String, line: Int, reason: String)
    case empty(path: String)

    public var errorDescription: String? {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .invalidUTF8(let path, let offset): return "\(path): invalid UTF-8 at byte offset \(offset)"
        case .invalidJSONLine(let path, let line, let reason), .invalidLine(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        case .empty(let path): return "\(path): the corpus holds no text"
        }
    }
}

/// A text corpus: a `.txt` file (documents separated by `<|endoftext|>` lines or by blank lines),
/// a `.jsonl` file (one JSON object with a `"text"` string per line), or a folder of such files
/// (read in name order).
///
/// ```swift
/// let corpus = try Corpus(contentsOf: URL(fileURLWithPath: "tinystories_v2_10k.txt"))
/// corpus.documents.count   // 10000 stories
/// // Huge files: stream instead of loading.
/// try Corpus.forEachDocument(at: url) { story in … }
/// ```
public struct Corpus: Sendable {
    /// The file or folder read.
    public let source: URL
    /// The documents, in order; none is empty.
    public let documents: [String]

    /// Reads every document of `url` into memory.
    public init(contentsOf url: URL, options: CorpusOptions = CorpusOptions()) throws {
        var documents: [String] = []
        try Self.forEachDocument(at: url, options: options) { documents.append($0) }
        self.source = url
        self.documents = documents
    }

    /// The files a corpus path stands for: the file itself, or a folder's `.txt` and `.jsonl` files.
    public static func files(at url: URL) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CorpusError.unreadable(path: url.path, reason: "no such file or folder")
        }
        guard isDirectory.boolValue else { return [url] }
        let names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
        return names.filter { $0.hasSuffix(".txt") || $0.hasSuffix(".jsonl") }.map { url.appendingPathComponent($0) }
    }

    /// A hash of the options and of each file's name, size and modification time: a token cache
    /// built from other bytes has another fingerprint.
    public static func fingerprint(of url: URL, options: CorpusOptions = CorpusOptions()) throws -> UInt64 {
        var hash = StableHash()
        hash.combine(options.separator.rawValue)
        hash.combine(options.replaceInvalidUTF8 ? 1 : 0)
        for file in try files(at: url) {
            let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
            hash.combine(file.lastPathComponent)
            hash.combine((attributes[.size] as? NSNumber)?.intValue ?? -1)
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            hash.combine(Int((modified * 1_000_000).rounded()))
        }
        return hash.value
    }

    /// `data` as a string; throws ``CorpusError/invalidUTF8(path:offset:)`` naming `source` and the
    /// first bad byte, or replaces bad bytes by U+FFFD when `replaceInvalid` is set.
    public static func decodeUTF8(_ data: Data, source: String, replaceInvalid: Bool = false) throws -> String {
        let bytes = [UInt8](data)
        if !replaceInvalid, let bad = UTF8Validation.firstInvalidOffset(in: bytes[...]) {
            throw CorpusError.invalidUTF8(path: source, offset: bad)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Calls `body` with each document of `url` in order, reading `chunkSize` bytes at a time, so
    /// memory stays bounded by the longest document. Throws ``CorpusError/empty(path:)`` when no
    /// document has text.
    public static func forEachDocument(
        at url: URL, options: CorpusOptions = CorpusOptions(), chunkSize: Int = 1 << 22,
        _ body: (String) throws -> Void
    ) throws {
        var count = 0
        for file in try files(at: url) {
            var fileOptions = options
            if options.separator == .auto { fileOptions.separator = try detectSeparator(file) }
            let reader = DocumentReader(path: file.path, options: fileOptions, isJSONLines: file.pathExtension == "jsonl")
            try reader.read(chunkSize: chunkSize) { document in
                count += 1
                try body(document)
            }
        }
        if count == 0 { throw CorpusError.empty(path: url.path) }
    }
}

/// `.endOfText` when the first 4 MB of `file` hold a line reading `<|endoftext|>`, else `.blankLines`.
private func detectSeparator(_ file: URL) throws -> CorpusOptions.Separator {
    guard let handle = FileHandle(forReadingAtPath: file.path) else {
        throw CorpusError.unreadable(path: file.path, reason: "cannot open the file")
    }
    defer { try? handle.close() }
    let head = (try? handle.read(upToCount: 1 << 22)) ?? Data()
    let text = String(decoding: head, as: UTF8.self)
    return text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == SpecialToken.endOfText }
        ? .endOfText : .blankLines
}

/// Cuts one file into documents, line by line.
private struct DocumentReader {
    let path: String
    let options: CorpusOptions
    let isJSONLines: Bool

    func read(chunkSize: Int, _ emit: (String) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CorpusError.unreadable(path: path, reason: "cannot open the file")
        }
        defer { try? handle.close() }
        var document: [UInt8] = []
        var pending: [UInt8] = []  // the start of a line that continues in the next chunk
        var offset = 0  // file offset of pending[0]
        var lineNumber = 0

        func flush() throws {
            // Trim blank lines at both ends.
            var end = document.count
            while end > 0 && (document[end - 1] == 0x0A || document[end - 1] == 0x0D) { end -= 1 }
            var start = 0
            while start < end && document[start] == 0x0A { start += 1 }
            if start < end { try emit(String(decoding: document[start..<end], as: UTF8.self)) }
            document.removeAll(keepingCapacity: true)
        }

        func line(_ bytes: ArraySlice<UInt8>, at lineOffset: Int) throws {
            lineNumber += 1
            var bytes = bytes
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            var text = bytes
            if let bad = UTF8Validation.firstInvalidOffset(in: bytes) {
                guard options.replaceInvalidUTF8 else { throw CorpusError.invalidUTF8(path: path, offset: lineOffset + bad) }
                text = ArraySlice(String(decoding: bytes, as: UTF8.self).utf8)
            }
            if isJSONLines {
                if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
                try emitJSON(text)
                return
            }
            let isSeparator: Bool
            switch options.separator {
            case .endOfText:
                isSeparator =
                    text.count < 64 && text.contains(UInt8(ascii: "<"))
                    && String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespaces) == SpecialToken.endOfText
            case .blankLines, .auto:  // .auto is resolved per file before reading
                isSeparator = text.allSatisfy { $0 == 0x20 || $0 == 0x09 }
            }
            if isSeparator {
                try flush()
            } else {
                document.append(contentsOf: text)
                document.append(0x0A)
            }
        }

        func emitJSON(_ text: ArraySlice<UInt8>) throws {
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(text)) } catch {
                throw CorpusError.invalidJSONLine(path: path, line: lineNumber, reason: "not valid JSON")
            }
            guard let record = object as? [String: Any] else {
                throw CorpusError.invalidJSONLine(path: path, line: lineNumber, reason: "expected a JSON object")
            }
            guard let value = record["text"] as? String else {
                throw CorpusError.invalidJSONLine(path: path, line: lineNumber, reason: "no \"text\" string field")
            }
            if !value.isEmpty { try emit(value) }
        }

        while true {
            let chunk: Data
            do { chunk = try handle.read(upToCount: chunkSize) ?? Data() } catch {
                throw CorpusError.unreadable(path: path, reason: error.localizedDescription)
            }
            if chunk.isEmpty { break }
            pending.append(contentsOf: chunk)
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                try line(pending[start..<newline], at: offset + start)
                start = newline + 1
            }
            pending.removeFirst(start)
            offset += start
        }
        if !pending.isEmpty { try line(pending[...], at: offset) }
        if !isJSONLines { try flush() }
    }
}

/// UTF-8 validation that reports where the first bad byte is.
enum UTF8Validation {
    /// The offset (from the slice's start) of the first byte that is not part of valid UTF-8, or `nil`.
    static func firstInvalidOffset(in bytes: ArraySlice<UInt8>) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            var i = 0
            let n = buffer.count
            while i < n {
                let lead = buffer[i]
                if lead < 0x80 { i += 1; continue }
                let length: Int
                var low: UInt8 = 0x80, high: UInt8 = 0xBF  // range of the second byte
                switch lead {
                case 0xC2...0xDF: length = 2
                case 0xE0: length = 3; low = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: length = 3
                case 0xED: length = 3; high = 0x9F
                case 0xF0: length = 4; low = 0x90
                case 0xF1...0xF3: length = 4
                case 0xF4: length = 4; high = 0x8F
                default: return i
                }
                guard i + 1 < n, (low...high).contains(buffer[i + 1]) else { return i }
                for k in 2..<length where i + k >= n || buffer[i + k] & 0xC0 != 0x80 { return i }
                i += length
            }
            return nil
        }
    }
}
