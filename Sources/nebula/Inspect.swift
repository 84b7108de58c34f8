import ArgumentParser
import Foundation
import NebulaTensor
import NebulaModels
import NebulaNN

/// `nebula inspect FILE.safetensors` (or a model folder): the tensors of a checkpoint (name, dtype, shape,
/// parameter count), totals and metadata, as a table or as JSON. A broken file is a one-line error and exit 1.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "List the tensors of a safetensors file, or of a model folder's weights (model.safetensors, or the shards of a Hugging Face index).",
        discussion: "Tensors are sorted by name. A file that is not valid safetensors is reported on standard error with exit status 1."
    )

    @Argument(help: "A .safetensors file or a model folder.") var file: String
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        let checkpoints = try reportingErrors {
            var isFolder: ObjCBool = false
            let url = fileURL(file)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue else {
                return [try SafeTensorsFile(contentsOf: url)]
            }
            return try HuggingFaceGPT2.weightFiles(in: url).map { try SafeTensorsFile(contentsOf: $0) }
        }
        let report = Report(checkpoints, file: file)
        print(json ? try report.json() : report.table())
    }
}

/// What `inspect` prints, in either form.
private struct Report: Encodable {
    struct Tensor: Encodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let parameters: Int
        let bytes: Int
    }

    let file: String
    let tensors: [Tensor]
    let tensorCount: Int
    let parameters: Int
    let bytes: Int
    let metadata: [String: String]

    /// One checkpoint, or the shards of one (their tensors together; the first shard's metadata).
    init(_ checkpoints: [SafeTensorsFile], file: String) {
        self.file = file
        tensors = checkpoints.flatMap(\.tensors)
            .sorted { $0.name < $1.name }
            .map {
                Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, parameters: $0.elementCount, bytes: $0.byteRange.count)
            }
        tensorCount = tensors.count
        parameters = tensors.reduce(0) { $0 + $1.parameters }
        bytes = tensors.reduce(0) { $0 + $1.bytes }
        metadata = checkpoints.first?.metadata ?? [:]
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func table() -> String {
        let rows =
            [["NAME", "DTYPE", "SHAPE", "PARAMETERS"]]
            + tensors.map {
                [printable($0.name), $0.dtype, "[\($0.shape.map(String.init).joined(separator: ", "))]", grouped($0.parameters)]
            }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max()! }
        var lines = rows.map { row in
            (0..<4).map { column in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return column == 3 ? padding + row[column] : row[column] + padding  // numbers right-aligned
            }.joined(separator: "  ")
        }
        lines.append("")
        lines.append("\(grouped(tensorCount)) tensors, \(grouped(parameters)) parameters, \(grouped(bytes)) bytes")
        if !metadata.isEmpty {
            lines.append("")
            lines.append("metadata:")
            lines += metadata.keys.sorted().map { "  \(printable($0)): \(printable(metadata[$0]!))" }
        }
        return lines.joined(separator: "\n")
    }
}

/// 1234567 → "1,234,567".
private func grouped(_ number: Int) -> String {
    let digits = String(number)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(digit)
    }
    return result
}

/// Control characters escaped, so a name or metadata value cannot break the table's lines.
private func printable(_ text: String) -> String {
    text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: false) : String($0) }.joined()
}
