// Reading and writing safetensors files (https://github.com/huggingface/safetensors).
//
// Layout of a file:
//
//     [8 bytes]  N, the header length, an unsigned little-endian 64-bit integer
//     [N bytes]  a UTF-8 JSON object: tensor name → {"dtype", "shape", "data_offsets": [begin, end]},
//                plus an optional "__metadata__" object of string → string; may end in spaces
//     [rest]     the data section: every tensor's bytes, little-endian and row-major, at
//                [begin, end) counted from the first byte after the header, with no gaps and no overlaps
//
// Every way a file can be broken or hostile ends in a `SafeTensorsError` naming the file, the byte
// offset and what was expected; nothing is allocated from a size the file declares before that size
// has been checked against the file itself.

import Foundation

// MARK: - Data types

/// The element type of a tensor, as spelled in the header's `"dtype"` field.
///
/// All types of the specification with whole-byte elements are recognised, so any such file can be
/// opened and inspected; ``SafeTensorsFile/floats(_:)`` reads `F32`, `F16` and `BF16`, and
/// ``SafeTensorsFile/integers(_:)`` reads `I64` and `I32`.
///
/// ```swift
/// SafeTensorsDType(rawValue: "BF16")?.byteSize  // 2
/// ```
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

// MARK: - Errors

/// Why a safetensors file could not be read or written.
///
/// The description is one line: the file, the byte offset where the problem is (when there is one)
/// and what was expected against what was found.
///
/// ```swift
/// do { _ = try SafeTensorsFile(contentsOf: url) } catch {
///     print(error.localizedDescription)
///     // model.safetensors: at byte 0: expected a header length of at most 100000000 bytes, found 4294967296
/// }
/// ```
public struct SafeTensorsError: Error, LocalizedError, Sendable {
    /// The broad class of problem, for callers (and tests) that branch on it.
    public enum Kind: Sendable {
        /// The file could not be opened, created or written.
        case io
        /// Fewer than the 8 bytes of the header length.
        case fileTooShort
        /// The declared header length is above the cap or runs past the end of the file.
        case headerLength
        /// The header is not UTF-8 JSON, or not a JSON object.
        case headerSyntax
        /// A tensor entry or the metadata has a missing field or a field of the wrong type.
        case invalidEntry
        /// A dtype not in the specification.
        case unknownDType
        /// A shape dimension that is negative or not an integer, or an element count that overflows.
        case invalidShape
        /// Data offsets reversed, out of range, overlapping, or leaving bytes uncovered.
        case invalidOffsets
        /// A tensor's byte range does not hold dtype size × element count bytes.
        case byteCountMismatch
        /// Two tensors with the same name.
        case duplicateName
        /// No tensor of the requested name.
        case missingTensor
        /// A tensor read as, or written from, values its dtype cannot hold.
        case dtypeMismatch
        /// An entry passed to the writer is inconsistent (shape against values, reserved name, range).
        case invalidEntryToWrite
    }

    /// What went wrong, broadly.
    public let kind: Kind
    /// The file (or `"<memory>"`) the error is about.
    public let source: String
    /// The absolute byte offset in the file where the problem lies, when it has one.
    public let offset: Int?
    /// What was expected and what was found.
    public let problem: String

    /// An error about `source`; `problem` reads "expected …, found …".
    public init(_ kind: Kind, source: String, offset: Int? = nil, _ problem: String) {
        self.kind = kind
        self.source = source
        self.offset = offset
        self.problem = problem
    }

    public var errorDescription: String? {
        if let offset { return "\(source): at byte \(offset): \(problem)" }
        return "\(source): \(problem)"
    }
}

// MARK: - Reading

/// Where one tensor lives in a safetensors file.
public struct SafeTensorsInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// The tensor's bytes, counted from the start of the data section (the byte after the header).
    public let byteRange: Range<Int>

    /// The number of elements: the product of the shape (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A validated safetensors file, read lazily from a memory map.
///
/// Opening checks the whole header against the file (see ``SafeTensorsError``); values are decoded
/// only when asked for.
///
/// ```swift
/// let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "model.safetensors"))
/// for tensor in file.tensors { print(tensor.name, tensor.shape) }
/// let embedding = try file.floats("wte.weight")      // F32, F16 or BF16 → Float
/// let tokens = try file.integers("inputs")           // I64 or I32 → Int
/// print(file.metadata["format"] ?? "-")
/// ```
public struct SafeTensorsFile: Sendable {
    /// The largest header accepted, as in the reference implementation.
    public static let maximumHeaderLength = 100_000_000

    /// The file name used in error messages.
    public let source: String
    /// The `"__metadata__"` map (empty when the file has none).
    public let metadata: [String: String]
    /// Every tensor, in data-offset order.
    public let tensors: [SafeTensorsInfo]
    /// The absolute file offset of the data section: 8 + header length.
    public let dataOffset: Int

    private let data: Data
    private let indexByName: [String: Int]

    /// Opens and validates a file, memory-mapping it rather than reading it into memory.
    public init(contentsOf url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw SafeTensorsError(.io, source: url.relativePath, "expected a file, found nothing at this path")
        }
        guard !isDirectory.boolValue else {
            throw SafeTensorsError(.io, source: url.relativePath, "expected a file, found a directory")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(.io, source: url.relativePath, "cannot read the file: \(error.localizedDescription)")
        }
        try self.init(data: data, source: url.relativePath)
    }

    /// Validates the safetensors bytes in `data`; `source` names them in errors.
    public init(data: Data, source: String = "<memory>") throws {
        let reader = HeaderReader(source: source)
        let header = try reader.read(data)
        self.source = source
        self.data = data
        self.metadata = header.metadata
        self.tensors = header.tensors
        self.dataOffset = header.dataOffset
        self.indexByName = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    /// The tensor called `name`, or nil.
    public func info(_ name: String) -> SafeTensorsInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The values of an `F32`, `F16` or `BF16` tensor as `Float`s, row-major.
    public func floats(_ name: String) throws -> [Float] {
        let tensor = try requireTensor(name)
        switch tensor.dtype {
        case .f32:
            return decode(tensor) { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: UInt32.self))) }
        case .f16: return decode(tensor) { floatFromHalf(UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: 2 * $1, as: UInt16.self))) }
        case .bf16:
            return decode(tensor) { floatFromBFloat16(UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: 2 * $1, as: UInt16.self))) }
        default: throw mismatch(tensor, expected: "F32, F16 or BF16")
        }
    }

    /// The values of an `I64` or `I32` tensor as `Int`s, row-major.
    public func integers(_ name: String) throws -> [Int] {
        let tensor = try requireTensor(name)
        switch tensor.dtype {
        case .i64: return decode(tensor) { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8 * $1, as: Int64.self))) }
        case .i32: return decode(tensor) { Int(Int32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * $1, as: Int32.self))) }
        default: throw mismatch(tensor, expected: "I64 or I32")
        }
    }

    private func requireTensor(_ name: String) throws -> SafeTensorsInfo {
        guard let tensor = info(name) else {
            throw SafeTensorsError(
                .missingTensor, source: source,
                "expected a tensor named \(quoted(name)), found none among \(tensors.count) tensors")
        }
        return tensor
    }

    private func mismatch(_ tensor: SafeTensorsInfo, expected: String) -> SafeTensorsError {
        SafeTensorsError(
            .dtypeMismatch, source: source, offset: dataOffset + tensor.byteRange.lowerBound,
            "tensor \(quoted(tensor.name)): expected dtype \(expected), found \(tensor.dtype.rawValue)")
    }

    /// Decodes every element of `tensor` with `element(bytes, index)`, `bytes` being the tensor's own.
    private func decode<T>(_ tensor: SafeTensorsInfo, _ element: (UnsafeRawBufferPointer, Int) -> T) -> [T] {
        data.withUnsafeBytes { file in
            let start = dataOffset + tensor.byteRange.lowerBound
            let bytes = UnsafeRawBufferPointer(rebasing: file[start..<(start + tensor.byteRange.count)])
            return (0..<tensor.elementCount).map { element(bytes, $0) }
        }
    }
}

/// Validates a header against the file it came from.
private struct HeaderReader {
    let source: String

    struct Header {
        var metadata: [String: String] = [:]
        var tensors: [SafeTensorsInfo] = []
        var dataOffset = 0
    }

    func read(_ data: Data) throws -> Header {
        guard data.count >= 8 else {
            throw SafeTensorsError(
                .fileTooShort, source: source, offset: 0,
                "expected at least 8 bytes (the header length), found a \(data.count)-byte file")
        }
        let declared = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declared <= UInt64(SafeTensorsFile.maximumHeaderLength) else {
            throw SafeTensorsError(
                .headerLength, source: source, offset: 0,
                "expected a header length of at most \(SafeTensorsFile.maximumHeaderLength) bytes, found \(declared)")
        }
        guard declared <= UInt64(data.count - 8) else {
            throw SafeTensorsError(
                .headerLength, source: source, offset: 0,
                "expected a header length of at most \(data.count - 8) bytes (the rest of the file), found \(declared)")
        }
        let headerLength = Int(declared)
        let start = data.startIndex
        let root: JSONNode
        do {
            root = try JSONParser.parse([UInt8](data[(start + 8)..<(start + 8 + headerLength)]))
        } catch let error as JSONSyntaxError {
            throw SafeTensorsError(.headerSyntax, source: source, offset: 8 + error.position, "header is not valid JSON: \(error.message)")
        }
        guard case .object(let members) = root.value else {
            throw SafeTensorsError(
                .headerSyntax, source: source, offset: 8 + root.position,
                "expected the header to be a JSON object, found \(root.typeName)")
        }

        var header = Header(dataOffset: 8 + headerLength)
        let dataSize = data.count - header.dataOffset
        var positions: [String: Int] = [:]  // file offset of each entry's "data_offsets", for messages
        var names = Set<String>()
        for member in members {
            guard names.insert(member.key).inserted else {
                throw SafeTensorsError(
                    .duplicateName, source: source, offset: 8 + member.keyPosition,
                    "expected unique tensor names, found \(quoted(member.key)) twice")
            }
            if member.key == "__metadata__" {
                header.metadata = try metadata(member.value)
            } else {
                let (tensor, position) = try entry(member.key, member.value, dataSize: dataSize)
                header.tensors.append(tensor)
                positions[tensor.name] = position
            }
        }

        // The byte ranges, in order, must tile the data section exactly.
        header.tensors.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        var covered = 0
        var previous: String?
        for tensor in header.tensors {
            let begin = tensor.byteRange.lowerBound
            let after = previous.map { " (the end of \(quoted($0)))" } ?? " (the start of the data section)"
            if begin < covered {
                throw SafeTensorsError(
                    .invalidOffsets, source: source, offset: positions[tensor.name],
                    "tensor \(quoted(tensor.name)) overlaps \(quoted(previous!)): expected it to begin at data offset \(covered)\(after), found \(begin)"
                )
            }
            if begin > covered {
                throw SafeTensorsError(
                    .invalidOffsets, source: source, offset: positions[tensor.name],
                    "tensor \(quoted(tensor.name)) leaves a gap: expected it to begin at data offset \(covered)\(after), found \(begin)")
            }
            covered = tensor.byteRange.upperBound
            previous = tensor.name
        }
        if covered != dataSize {
            throw SafeTensorsError(
                .invalidOffsets, source: source, offset: header.dataOffset + covered,
                "expected the tensors to cover the \(dataSize)-byte data section, found \(dataSize - covered) bytes after the last tensor")
        }
        return header
    }

    /// The `"__metadata__"` object: string values only (`null` counts as empty, as in the reference).
    private func metadata(_ node: JSONNode) throws -> [String: String] {
        if case .null = node.value { return [:] }
        guard case .object(let members) = node.value else {
            throw SafeTensorsError(
                .invalidEntry, source: source, offset: 8 + node.position,
                "\"__metadata__\": expected an object of strings, found \(node.typeName)")
        }
        var result: [String: String] = [:]
        for member in members {
            guard result[member.key] == nil else {
                throw SafeTensorsError(
                    .invalidEntry, source: source, offset: 8 + member.keyPosition,
                    "\"__metadata__\": expected unique keys, found \(quoted(member.key)) twice")
            }
            guard case .string(let value) = member.value.value else {
                throw SafeTensorsError(
                    .invalidEntry, source: source, offset: 8 + member.value.position,
                    "\"__metadata__\" key \(quoted(member.key)): expected a string, found \(member.value.typeName)")
            }
            result[member.key] = value
        }
        return result
    }

    /// One tensor entry, checked against itself and the data section's size; also returns the
    /// file offset of its `data_offsets`.
    private func entry(_ name: String, _ node: JSONNode, dataSize: Int) throws -> (SafeTensorsInfo, Int) {
        func fail(_ kind: SafeTensorsError.Kind, _ at: JSONNode, _ problem: String) -> SafeTensorsError {
            SafeTensorsError(kind, source: source, offset: 8 + at.position, "tensor \(quoted(name)): \(problem)")
        }
        guard case .object(let fields) = node.value else {
            throw fail(.invalidEntry, node, "expected an object with dtype, shape and data_offsets, found \(node.typeName)")
        }
        func field(_ key: String) throws -> JSONNode {
            let found = fields.filter { $0.key == key }
            guard found.count == 1 else {
                throw fail(.invalidEntry, found.last?.value ?? node, "expected one \"\(key)\" field, found \(found.count)")
            }
            return found[0].value
        }
        func integers(_ key: String, _ kind: SafeTensorsError.Kind) throws -> (JSONNode, [Int]) {
            let array = try field(key)
            guard case .array(let elements) = array.value else {
                throw fail(.invalidEntry, array, "expected \"\(key)\" to be an array of integers, found \(array.typeName)")
            }
            let values = try elements.map { element -> Int in
                guard case .number(let text) = element.value else {
                    throw fail(.invalidEntry, element, "expected \"\(key)\" to hold integers, found \(element.typeName)")
                }
                guard let value = Int(text), value >= 0 else {
                    throw fail(kind, element, "expected \"\(key)\" to hold non-negative integers below 2^63, found \(displayed(text))")
                }
                return value
            }
            return (array, values)
        }

        let dtypeNode = try field("dtype")
        guard case .string(let dtypeName) = dtypeNode.value else {
            throw fail(.invalidEntry, dtypeNode, "expected \"dtype\" to be a string, found \(dtypeNode.typeName)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail(.unknownDType, dtypeNode, "expected a dtype among \(known), found \(quoted(dtypeName))")
        }
        let (shapeNode, shape) = try integers("shape", .invalidShape)
        var byteCount = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw fail(
                    .invalidShape, shapeNode,
                    "expected a shape whose size in bytes fits in 63 bits, found \(displayed("\(shape)")) of \(dtypeName)")
            }
            byteCount = product
        }
        let (offsetsNode, offsets) = try integers("data_offsets", .invalidOffsets)
        guard offsets.count == 2 else {
            throw fail(.invalidOffsets, offsetsNode, "expected \"data_offsets\" to be [begin, end], found \(offsets.count) numbers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw fail(.invalidOffsets, offsetsNode, "expected data_offsets [begin, end] with begin ≤ end, found [\(begin), \(end)]")
        }
        guard end <= dataSize else {
            throw fail(
                .invalidOffsets, offsetsNode, "expected data_offsets within the \(dataSize)-byte data section, found [\(begin), \(end)]")
        }
        guard end - begin == byteCount else {
            throw fail(
                .byteCountMismatch, offsetsNode,
                "expected \(byteCount) bytes (\(dtypeName) × shape \(displayed("\(shape)"))), found \(end - begin) (data_offsets [\(begin), \(end)])"
            )
        }
        return (SafeTensorsInfo(name: name, dtype: dtype, shape: shape, byteRange: begin..<end), 8 + offsetsNode.position)
    }
}

// MARK: - Writing

/// One tensor to write: a name, a dtype, a shape and its values in row-major order.
///
/// ```swift
/// let weight = SafeTensorsEntry(name: "lm_head.weight", shape: [64, 32], floats: values, dtype: .bf16)
/// let tokens = SafeTensorsEntry(name: "inputs", shape: [4, 16], integers: ids)   // I64
/// ```
public struct SafeTensorsEntry: Sendable {
    /// The values, before conversion to the entry's dtype.
    public enum Payload: Sendable {
        case floats([Float])
        case integers([Int])
    }

    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    public let payload: Payload

    /// Floating-point values, stored as `F32` (default), `F16` or `BF16` (rounded to nearest even).
    public init(name: String, shape: [Int], floats: [Float], dtype: SafeTensorsDType = .f32) {
        self.init(name: name, dtype: dtype, shape: shape, payload: .floats(floats))
    }

    /// Integer values, stored as `I64` (default) or `I32`.
    public init(name: String, shape: [Int], integers: [Int], dtype: SafeTensorsDType = .i64) {
        self.init(name: name, dtype: dtype, shape: shape, payload: .integers(integers))
    }

    /// Any dtype and payload; ``writeSafeTensors(_:metadata:to:)`` checks that they agree.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], payload: Payload) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.payload = payload
    }
}

/// Writes `entries` (in the order given) and `metadata` as a safetensors file at `url`.
///
/// The file is written durably (``DurableFile``: a temporary file beside it, fsync, rename), so
/// `url` holds either its old contents or the complete new file, never a part of one. The header is
/// padded with spaces to a multiple of 8 bytes, as the reference writer does, so the data section is
/// aligned.
///
/// ```swift
/// try writeSafeTensors([SafeTensorsEntry(name: "w", shape: [2, 2], floats: [1, 2, 3, 4])],
///                      metadata: ["format": "pt"], to: URL(fileURLWithPath: "w.safetensors"))
/// ```
public func writeSafeTensors(_ entries: [SafeTensorsEntry], metadata: [String: String] = [:], to url: URL) throws {
    let source = url.relativePath
    let header = try encodeHeader(entries, metadata: metadata, source: source)
    var headerLength = UInt64(header.count).littleEndian
    var prefix = Data(bytes: &headerLength, count: 8)
    prefix.append(header)

    do {
        try DurableFile.write(to: url) { file in
            try file.append(prefix)
            for entry in entries { try file.append(encodeValues(entry)) }
        }
    } catch let error as FileWriteError {
        throw SafeTensorsError(.io, source: source, "cannot write the file (\(error.reason))")
    }
}

/// Checks the entries and returns the JSON header, padded with spaces to a multiple of 8 bytes.
private func encodeHeader(_ entries: [SafeTensorsEntry], metadata: [String: String], source: String) throws -> Data {
    func fail(_ kind: SafeTensorsError.Kind, _ problem: String) -> SafeTensorsError {
        SafeTensorsError(kind, source: source, problem)
    }
    var fields: [String] = []
    if !metadata.isEmpty {
        let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
        fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var names = Set<String>()
    var offset = 0
    for entry in entries {
        guard entry.name != "__metadata__" else {
            throw fail(.invalidEntryToWrite, "expected a tensor name other than \"__metadata__\" (reserved), found it")
        }
        guard names.insert(entry.name).inserted else {
            throw fail(.duplicateName, "expected unique tensor names, found \(quoted(entry.name)) twice")
        }
        var count = 1
        for dimension in entry.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else {
                throw fail(
                    .invalidShape,
                    "tensor \(quoted(entry.name)): expected non-negative dimensions with a 63-bit product, found shape \(entry.shape)")
            }
            count = product
        }
        let valueCount: Int
        switch (entry.payload, entry.dtype) {
        case (.floats(let values), .f32), (.floats(let values), .f16), (.floats(let values), .bf16):
            valueCount = values.count
        case (.integers(let values), .i64):
            valueCount = values.count
        case (.integers(let values), .i32):
            if let outOfRange = values.first(where: { Int32(exactly: $0) == nil }) {
                throw fail(.dtypeMismatch, "tensor \(quoted(entry.name)): expected I32 values, found \(outOfRange)")
            }
            valueCount = values.count
        case (.floats, _):
            throw fail(
                .dtypeMismatch,
                "tensor \(quoted(entry.name)): expected dtype F32, F16 or BF16 for float values, found \(entry.dtype.rawValue)")
        case (.integers, _):
            throw fail(
                .dtypeMismatch, "tensor \(quoted(entry.name)): expected dtype I64 or I32 for integer values, found \(entry.dtype.rawValue)")
        }
        guard valueCount == count else {
            throw fail(
                .invalidEntryToWrite, "tensor \(quoted(entry.name)): expected \(count) values for shape \(entry.shape), found \(valueCount)"
            )
        }
        let end = offset + count * entry.dtype.byteSize
        let shape = entry.shape.map(String.init).joined(separator: ",")
        fields.append(
            "\(jsonQuoted(entry.name)):{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
        offset = end
    }
    var header = Data("{\(fields.joined(separator: ","))}".utf8)
    header.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
    return header
}

/// The little-endian bytes of an entry's values in its dtype (already checked by `encodeHeader`).
private func encodeValues(_ entry: SafeTensorsEntry) -> Data {
    var data = Data(capacity: entry.shape.reduce(1, *) * entry.dtype.byteSize)
    func append<T: FixedWidthInteger>(_ values: some Sequence<T>) {
        for value in values { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    }
    switch entry.payload {
    case .floats(let values):
        switch entry.dtype {
        case .f16: append(values.lazy.map(halfFromFloat))
        case .bf16: append(values.lazy.map(bfloat16FromFloat))
        default: append(values.lazy.map(\.bitPattern))
        }
    case .integers(let values):
        if entry.dtype == .i32 { append(values.lazy.map { Int32($0) }) } else { append(values.lazy.map { Int64($0) }) }
    }
    return data
}
