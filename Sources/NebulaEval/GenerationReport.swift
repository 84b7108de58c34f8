import Foundation
import NebulaModels
import NebulaNN

/// Renders ``GenerationResults`` as a Markdown report with SVG plots: the systems side by side, quality
/// against loop steps and against seconds per sample, continuations against guidance, and each stage's
/// training curve.
///
/// ```swift
/// try GenerationReport(results: results, stages: ["lm": lmFolder]).write(to: folder)   // README.md + *.svg
/// ```
public struct GenerationReport {
    public let results: GenerationResults
    /// Stage name → model folder whose `log.jsonl` gives the training curve.
    public let stages: [(name: String, folder: URL)]
    /// Hand-written reading of the figures (Markdown), placed under "Findings" before the tables.
    public let findings: String?

    public init(results: GenerationResults, stages: [(name: String, folder: URL)], findings: String? = nil) {
        self.results = results
        self.stages = stages
        self.findings = findings
    }

    /// Writes `README.md` and the plots into `folder` (created).
    public func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var plots: [String: String] = [:]
        if !results.stepsSweep.isEmpty {
            for (figure, label) in [("mauve", "MAUVE"), ("perplexity", "perplexity under the LM")] {
                var bySteps = LinePlot(title: "\(label) against loop steps", xLabel: "steps", yLabel: label, logX: true)
                var byTime = LinePlot(title: "\(label) against time per sample", xLabel: "seconds per sample", yLabel: label, logX: true)
                let points = results.stepsSweep.map { ($0, $0.scores.value(figure)) }
                bySteps.add("diffusion", points: points.map { (Double($0.0.steps), $0.1) })
                byTime.add("diffusion", points: points.map { ($0.0.secondsPerSample, $0.1) })
                for row in results.rows where !row.name.hasPrefix("diffusion") {
                    let level = row.mean[figure] ?? .nan
                    let xs = results.stepsSweep.map { Double($0.steps) }
                    bySteps.add(row.name, points: [(xs.min()!, level), (xs.max()!, level)])
                    if row.secondsPerSample > 0 { byTime.add(row.name, points: [(row.secondsPerSample, level)]) }
                }
                plots["\(figure)_vs_steps.svg"] = bySteps.svg()
                plots["\(figure)_vs_time.svg"] = byTime.svg()
            }
        }
        let guided = results.continuation.filter { $0.guidance != nil }
        if guided.count > 1 {
            var plot = LinePlot(title: "Continuations: ROUGE-L against the true next passage", xLabel: "guidance weight", yLabel: "ROUGE-L")
            for system in Set(guided.map(\.system)).sorted() {
                plot.add(system, points: guided.filter { $0.system == system }.map { ($0.guidance!, $0.rougeL) })
            }
            for point in results.continuation where point.guidance == nil {
                let weights = guided.map { $0.guidance! }
                plot.add(point.system, points: [(weights.min()!, point.rougeL), (weights.max()!, point.rougeL)])
            }
            plots["continuation_rouge_vs_guidance.svg"] = plot.svg()
        }
        var curves: [(name: String, file: String)] = []
        for stage in stages {
            let log = stage.folder.appendingPathComponent(ModelFolder.log)
            guard FileManager.default.fileExists(atPath: log.path) else { continue }
            let file = "training_\(stage.name).svg"
            try writeLossPlot(log: log, to: folder.appendingPathComponent(file), title: "Training: \(stage.name)")
            curves.append((stage.name, file))
        }
        for (name, svg) in plots { try svg.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try markdown(plots: plots.keys.sorted(), curves: curves).write(to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
    }

    func markdown(plots: [String], curves: [(name: String, file: String)]) -> String {
        var lines = ["# Does the loop pay? Generation report", "",
                     "Produced by `\(results.command)` on \(results.date).",
                     "MAUVE reference: \(results.referencePassages) held-out human passages (disjoint from the human row); sampler: \(results.sampler).", ""]
        if let findings { lines += ["## Findings", "", findings.trimmingCharacters(in: .whitespacesAndNewlines), ""] }
        // The latents' Fréchet distance is a column only when some row has it (results from before it had none).
        let latentDistance = GenerationResults.Row.latentDistance
        let names = GenerationScores.names + (results.rows.contains { $0.mean[latentDistance] != nil } ? [latentDistance] : [])
        lines += ["## Systems", "",
                     "| system | parameters | samples × seeds | MAUVE ↑ | perplexity | diversity ↑ | distinct-1 | distinct-2 | unique openings | memorization (4-gram) | words |"
                     + (names.count > GenerationScores.names.count ? " latent FD ↓ |" : "") + " s / sample |",
                     "|---|---:|---:|" + String(repeating: "---:|", count: names.count + 1)]
        for row in results.rows {
            let cells = names.map { name -> String in
                guard let m = row.mean[name] else { return "–" }
                return row.seeds > 1 ? String(format: "%.3f ± %.3f", m, row.std[name] ?? 0) : String(format: "%.3f", m)
            }
            let parameters = row.parameters > 0 ? String(format: "%.2fM", Double(row.parameters) / 1e6) : "–"
            let seconds = row.secondsPerSample > 0 ? String(format: "%.3f", row.secondsPerSample) : "–"
            lines.append("| \(row.name) | \(parameters) | \(row.samples) × \(row.seeds) | " + cells.joined(separator: " | ") + " | \(seconds) |")
        }
        lines += ["", "Perplexity is under the bundle's frozen LM; memorization is the share of a row's word 4-grams found in the training corpus."
                  + (names.count > GenerationScores.names.count
                     ? " Latent FD is the Fréchet distance of a row's latents (the human row: the encoder's latents of its passages) to the encoder's latents of the MAUVE reference, as FID on images: how near the loop lands to the encoder's latents, before any decoder." : ""), ""]
        for row in results.rows {
            lines += ["**\(row.name)**, first samples:", ""] + row.examples.map { "> " + $0.replacingOccurrences(of: "\n", with: " ") + "\n" }
        }
        if !results.stepsSweep.isEmpty {
            lines += ["## Quality against loop steps", "",
                      "| steps | MAUVE ↑ | perplexity | diversity ↑ | memorization | s / sample | first sample |", "|---:|---:|---:|---:|---:|---:|---|"]
            for point in results.stepsSweep {
                let s = point.scores
                lines.append(String(format: "| %d | %.3f | %.2f | %.3f | %.3f | %.3f | ", point.steps, s.mauve, s.perplexity, s.diversity, s.memorization, point.secondsPerSample)
                             + point.example.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "\\|") + " |")
            }
            lines.append("")
            for plot in plots where plot.contains("_vs_") && !plot.hasPrefix("continuation") { lines += ["![\(plot)](\(plot))", ""] }
        }
        if !results.continuation.isEmpty {
            lines += ["## Continuations of held-out prompts", "",
                      "\(results.prompts) held-out passages as prompts; each continuation is scored against the true next passage.", "",
                      "| system | guidance | steps | ROUGE-L ↑ | MAUVE ↑ | s / sample |", "|---|---:|---:|---:|---:|---:|"]
            for point in results.continuation {
                lines.append("| \(point.system) | \(point.guidance.map { String(format: "%.1f", $0) } ?? "–") | \(point.steps.map(String.init) ?? "–") | "
                             + String(format: "%.3f | %.3f | %.3f |", point.rougeL, point.mauve, point.secondsPerSample))
            }
            lines.append("")
            if plots.contains("continuation_rouge_vs_guidance.svg") { lines += ["![guidance](continuation_rouge_vs_guidance.svg)", ""] }
        }
        if !curves.isEmpty {
            lines += ["## Training curves", ""] + curves.flatMap { ["![\($0.name)](\($0.file))", ""] }
        }
        return lines.joined(separator: "\n")
    }
}
