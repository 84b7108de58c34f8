import ArgumentParser
import Foundation
import NebulaTensor
import NebulaNN

/// Draws one metric of several training logs on one chart: runs set side by side (fp32 against bf16, two seeds).
struct PlotBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot a metric of several training runs' log.jsonl files on one SVG chart."
    )

    @Argument(help: "Run folders (each holding log.jsonl); a series is named after its folder.") var runs: [String]
    @Option(help: "The logged metric (train_loss, val_loss, grad_norm, ...).") var metric = "val_loss"
    @Option(help: "Average train-loss-like metrics over windows of this many steps (1 = raw).") var smooth = 1
    @Option(help: "Chart title.") var title = "Validation loss"
    @Option(help: "The SVG file to write.") var out: String

    func run() throws {
        var plot = LinePlot(title: title, xLabel: "step", yLabel: metric)
        for run in runs {
            let records = try MetricsLog.read(URL(fileURLWithPath: run).appendingPathComponent("log.jsonl"))
            let points = records.compactMap { record -> (Double, Double)? in
                guard let step = record["step"], let value = record[metric] else { return nil }
                return (step, value)
            }
            guard !points.isEmpty else { throw ValidationError("\(run)/log.jsonl has no \(metric)") }
            let windows = stride(from: 0, to: points.count, by: max(1, smooth)).map { start in
                let window = points[start..<min(points.count, start + max(1, smooth))]
                return (window.last!.0, window.map(\.1).reduce(0, +) / Double(window.count))
            }
            plot.add(URL(fileURLWithPath: run).lastPathComponent, points: windows)
            let last = points.last!
            print("\(run): \(metric) at step \(Int(last.0)) = \(String(format: "%.4f", last.1))")
        }
        try DurableFile.write(Data(plot.svg().utf8), to: URL(fileURLWithPath: out))
    }
}
