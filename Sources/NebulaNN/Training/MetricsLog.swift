import Foundation
import NebulaTensor

/// An append-only JSON Lines log of training figures: one object per line, e.g.
/// `{"step":100,"train_loss":2.31,"lr":0.001,"tokens_per_s":9800}`. Every figure is kept so plots and
/// reports can be made again from the log alone.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// Starts the log afresh (`step` nil), or continues a resumed run's log: only its whole lines of steps up to
    /// `step` (the checkpoint's) are kept, so steps run after the checkpoint by a killed process are not
    /// duplicated and a line torn by the kill is dropped. The kept lines are rewritten durably.
    public init(url: URL, keepingStepsThrough step: Int?) throws {
        self.url = url
        var kept = Data()
        if let step, let text = try? String(contentsOf: url, encoding: .utf8) {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {  // the last piece has no newline
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let logged = (object["step"] as? NSNumber)?.intValue, logged <= step
                else { continue }
                kept.append(contentsOf: line.utf8)
                kept.append(UInt8(ascii: "\n"))
            }
        }
        try DurableFile.write(kept, to: url)
        handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one record, as one write of one whole line; keys are written in sorted order, non-finite
    /// numbers as null.
    public func append(_ record: [String: Double]) throws {
        let body = record.keys.sorted().map { key -> String in
            let v = record[key]!
            let value = v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)) : "null"
            return "\"\(key)\":\(value)"
        }.joined(separator: ",")
        do {
            try handle.write(contentsOf: Data(("{" + body + "}\n").utf8))
        } catch {
            throw FileWriteError(path: url.relativePath, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
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
