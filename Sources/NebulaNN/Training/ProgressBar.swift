import Foundation

/// A one-line progress display for long jobs on standard error: a bar, the step, named figures
/// (loss, tokens/s, learning rate…) and the time left. On a terminal it redraws in place at most ten
/// times a second; otherwise (a log file, CI) it prints a plain line every `logEvery` steps.
///
/// ```swift
/// let bar = ProgressBar(total: 2000, label: "train")
/// bar.update(step: 10, ["loss": "2.31", "tok/s": "9,800"])
/// bar.finish()
/// ```
public final class ProgressBar {
    public let total: Int
    public let label: String
    private let start = Date()
    private let startStep: Int
    private var lastDraw = Date.distantPast
    private let interactive = isatty(STDERR_FILENO) != 0
    private let logEvery: Int

    public init(total: Int, label: String, startStep: Int = 0, logEvery: Int? = nil) {
        self.total = max(total, 1)
        self.label = label
        self.startStep = startStep
        self.logEvery = logEvery ?? max(1, total / 20)
    }

    /// Shows progress after `step` steps (1-based count of steps done) with the given figures, in order.
    public func update(step: Int, _ figures: KeyValuePairs<String, String> = [:], force: Bool = false) {
        let now = Date()
        if interactive {
            guard force || step == total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        } else {
            guard force || step == total || step % logEvery == 0 else { return }
        }
        lastDraw = now
        let fraction = Double(step) / Double(total)
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let elapsed = now.timeIntervalSince(start)
        let done = step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : 0
        let shown = figures.map { "\($0.key) \($0.value)" }.joined(separator: " │ ")
        let line =
            "\(label) \(bar) \(step)/\(total) │ \(shown)\(shown.isEmpty ? "" : " │ ")\(formatDuration(elapsed)) elapsed, ETA \(formatDuration(eta))"
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[2K" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    /// Ends the display with a newline (on a terminal).
    public func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// `1h02m`, `3m12s`, `42s`.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// Writes a status line to standard error.
public func printStatus(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
