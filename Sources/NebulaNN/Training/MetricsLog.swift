import Foundation

/// An append-only JSON Lines log of training figures: one object per line, e.g.
/// `{"step":100,"train_loss":2.31,"lr":0.001,"tokens_per_s":9800}`. Every figure is kept so plots and
/// reports can be made again from the log alone.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// Opens `url` for appending (creating it), or starts it afresh when `truncate` is set.
    public init(url: URL, truncate: Bool) throws {
        self.url = url
        if truncate || !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
        }
        handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one record; keys are written in sorted order, non-finite numbers as null.
    public func append(_ record: [String: Double]) {
        let body = record.keys.sorted().map { key -> String in
            let v = record[key]!
            let value = v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)) : "null"
            return "\"\(key)\":\(value)"
        }.joined(separator: ",")
        handle.write(Data(("{" + body + "}\n").utf8))
    }

    /// Reads every record of a log (numbers only; null becomes NaN).
    public static func read(_ url: URL) throws -> [[String: Double]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return object.mapValues { ($0 as? NSNumber)?.doubleValue ?? .nan }
        }
    }
}
