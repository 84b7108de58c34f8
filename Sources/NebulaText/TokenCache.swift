import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tokenized corpus in a compact binary file, memory-mapped for reading.
///
/// Layout (little-endian): a 64-byte header — magic `NBTOKENS`, version (UInt32), bytes per token
/// (UInt32: 2 when the vocabulary fits in UInt16, else 4), tokenizer fingerprint, source
/// fingerprint, token count, document count, vocabulary size (UInt64 each), 8 reserved bytes —
/// then the tokens, then `documentCount + 1` document start offsets (UInt64). Files are written to
/// a temporary name and renamed, so a reader never sees half a cache.
///
/// ```swift
/// let cache = try TokenCache.load(corpus: storiesURL, tokenizer: tokenizer,
///                                 cacheURL: storiesURL.appendingPathExtension("tokens"))
/// cache.tokens.count          // all tokens, `<|endoftext|>` after each document
/// cache.documentRange(3)      // where document 3's tokens are
/// ```
public final class TokenCache: @unchecked Sendable {  // immutable after init
    /// The first 8 bytes of every cache file.
    public static let magic = Array("NBTOKENS".utf8)
    /// The format version this code reads and writes.
    public static let version: UInt32 = 1
    static let headerSize = 64

    public let url: URL
    public let tokenizerFingerprint: UInt64
    public let sourceFingerprint: UInt64
    public let vocabularySize: Int
    public let documentCount: Int
    /// 2 (UInt16) or 4 (UInt32).
    public let bytesPerToken: Int
    /// The tokens, read from the mapped file.
    public var tokens: Tokens { Tokens(base: base + Self.headerSize, width: bytesPerToken, count: tokenCount, owner: self) }

    private let tokenCount: Int
    private let base: UnsafeRawPointer
    private let mappedSize: Int

    /// The tokens of a cache, as a random-access collection of `Int32` (read-only, so safe to share
    /// across threads; it keeps the mapping alive).
    public struct Tokens: RandomAccessCollection, @unchecked Sendable {
        let base: UnsafeRawPointer
        let width: Int
        public let count: Int
        let owner: TokenCache
        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(index: Int) -> Int32 {
            precondition(index >= 0 && index < count, "token index out of range")
            return width == 2
                ? Int32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
                : Int32(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
        }
    }

    /// Opens and checks a cache file. Throws ``CacheError`` when it is not a cache, is truncated, or
    /// is corrupt.
    public init(contentsOf url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw CacheError.unreadable(path: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CacheError.unreadable(path: url.path, reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        func corrupt(_ reason: String) -> CacheError { .corrupt(path: url.path, reason: reason) }
        guard size >= Self.headerSize else { throw corrupt("truncated: \(size) bytes, shorter than the header") }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw CacheError.unreadable(path: url.path, reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(mapping)
        func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        do {
            guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == Self.magic else { throw corrupt("not a Nebula token cache") }
            guard u32(8) == Self.version else { throw corrupt("version \(u32(8)), expected \(Self.version)") }
            let width = Int(u32(12))
            guard width == 2 || width == 4 else { throw corrupt("\(width) bytes per token") }
            let count = Int(truncatingIfNeeded: u64(32)), documents = Int(truncatingIfNeeded: u64(40))
            guard count >= 0, documents >= 0, count <= size, documents <= size else { throw corrupt("impossible counts") }
            let expected = Self.headerSize + count * width + (documents + 1) * 8
            guard size == expected else { throw corrupt("truncated or padded: \(size) bytes, expected \(expected)") }
            let offsetsStart = Self.headerSize + count * width
            var previous = 0
            for d in 0...documents {
                let value = Int(truncatingIfNeeded: u64(offsetsStart + d * 8))
                guard value >= previous, value <= count, d > 0 || value == 0 else { throw corrupt("document offsets out of order") }
                previous = value
            }
            guard previous == count else { throw corrupt("document offsets do not cover the tokens") }
            self.bytesPerToken = width
            self.tokenizerFingerprint = u64(16)
            self.sourceFingerprint = u64(24)
            self.tokenCount = count
            self.documentCount = documents
            self.vocabularySize = Int(truncatingIfNeeded: u64(48))
        } catch {
            munmap(mapping, size)
            throw error
        }
        self.base = base
        self.mappedSize = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), mappedSize) }

    /// The token range of document `index`.
    public func documentRange(_ index: Int) -> Range<Int> {
        precondition(index >= 0 && index < documentCount, "document index out of range")
        let offsets = base + Self.headerSize + tokenCount * bytesPerToken
        let start = Int(UInt64(littleEndian: offsets.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
        let end = Int(UInt64(littleEndian: offsets.loadUnaligned(fromByteOffset: index * 8 + 8, as: UInt64.self)))
        return start..<end
    }

    /// The tokens of the given documents, concatenated in the order given (a split's training set).
    public func tokens(ofDocuments indices: [Int]) -> [Int32] {
        var result: [Int32] = []
        let all = tokens
        for index in indices { result.append(contentsOf: all[documentRange(index)]) }
        return result
    }

    // MARK: Building

    /// Opens the cache at `cacheURL` when it was built from this corpus (same files, sizes and
    /// modification times, same options) with this tokenizer; otherwise (re)builds it.
    /// A corrupt cache is an error, not silently replaced.
    public static func load(
        corpus: URL, options: CorpusOptions = CorpusOptions(), tokenizer: any Tokenizer,
        cacheURL: URL, progress: ((_ bytesRead: Int) -> Void)? = nil
    ) throws -> TokenCache {
        if FileManager.default.fileExists(atPath: cacheURL.path) {
            let cache = try TokenCache(contentsOf: cacheURL)
            if try cache.tokenizerFingerprint == tokenizer.fingerprint
                && cache.sourceFingerprint == Corpus.fingerprint(of: corpus, options: options)
            {
                return cache
            }
        }
        return try build(corpus: corpus, options: options, tokenizer: tokenizer, cacheURL: cacheURL, progress: progress)
    }

    /// Tokenizes `corpus` (streamed, a batch of documents at a time on all cores) into a new cache at
    /// `cacheURL`. Each document is followed by `<|endoftext|>` when the tokenizer has it.
    @discardableResult
    public static func build(
        corpus: URL, options: CorpusOptions = CorpusOptions(), tokenizer: any Tokenizer,
        cacheURL: URL, progress: ((_ bytesRead: Int) -> Void)? = nil
    ) throws -> TokenCache {
        let width = tokenizer.vocabularySize <= 1 << 16 ? 2 : 4
        let sourceFingerprint = try Corpus.fingerprint(of: corpus, options: options)
        let temporary = cacheURL.deletingLastPathComponent()
            .appendingPathComponent(".\(cacheURL.lastPathComponent).\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary.path)
        else {
            throw CacheError.unreadable(path: temporary.path, reason: "cannot create the file")
        }
        var finished = false, closed = false
        defer {
            if !closed { try? handle.close() }
            if !finished { try? FileManager.default.removeItem(at: temporary) }
        }
        var offsets: [UInt64] = [0]
        var count = 0
        var bytesRead = 0
        var batch: [String] = []
        var batchBytes = 0
        let endOfText = tokenizer.endOfTextID

        func writeBatch() throws {
            let encoded = try tokenizer.encodeBatch(batch, allowedSpecial: .none)
            var narrow: [UInt16] = [], wide: [UInt32] = []
            for ids in encoded {
                for id in ids {
                    if width == 2 { narrow.append(UInt16(id).littleEndian) } else { wide.append(UInt32(id).littleEndian) }
                }
                if let endOfText {
                    if width == 2 { narrow.append(UInt16(endOfText).littleEndian) } else { wide.append(UInt32(endOfText).littleEndian) }
                }
                count += ids.count + (endOfText == nil ? 0 : 1)
                offsets.append(UInt64(count))
            }
            let buffer = width == 2 ? narrow.withUnsafeBytes { Data($0) } : wide.withUnsafeBytes { Data($0) }
            try write(buffer, to: handle, path: temporary.path)
            bytesRead += batchBytes
            progress?(bytesRead)
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }

        try write(Data(count: headerSize), to: handle, path: temporary.path)
        try Corpus.forEachDocument(at: corpus, options: options) { document in
            batch.append(document)
            batchBytes += document.utf8.count
            if batchBytes >= 1 << 22 { try writeBatch() }
        }
        if !batch.isEmpty { try writeBatch() }
        var tail = Data()
        for offset in offsets { withUnsafeBytes(of: offset.littleEndian) { tail.append(contentsOf: $0) } }
        try write(tail, to: handle, path: temporary.path)

        var header = Data(magic)
        for value in [version, UInt32(width)] { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        for value in [
            tokenizer.fingerprint, sourceFingerprint, UInt64(count), UInt64(offsets.count - 1),
            UInt64(tokenizer.vocabularySize), 0
        ] {
            withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) }
        }
        do {
            try handle.seek(toOffset: 0)
            try handle.write(contentsOf: header)
            try handle.synchronize()
            try handle.close()
            closed = true
        } catch {
            throw CacheError.unreadable(path: temporary.path, reason: "cannot write: \(error.localizedDescription)")
        }
        guard rename(temporary.path, cacheURL.path) == 0 else {
            throw CacheError.unreadable(path: cacheURL.path, reason: "cannot rename: \(String(cString: strerror(errno)))")
        }
        finished = true
        return try TokenCache(contentsOf: cacheURL)
    }

    private static func write(_ data: Data, to handle: FileHandle, path: String) throws {
        do { try handle.write(contentsOf: data) } catch {
            throw CacheError.unreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Errors of token caches.
public enum CacheError: LocalizedError, Equatable {
    case unreadable(path: String, reason: String)
    case corrupt(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        case .corrupt(let path, let reason): return "\(path): corrupt token cache (\(reason)); delete it to rebuild"
        }
    }
}
