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
            let judged = GenerationScores.judgeNames.filter { key in results.stepsSweep.contains { !$0.scores.value(key).isNaN } }
            let labels = [
                "judge_mauve": "MAUVE (judge features)", "judge_perplexity": "perplexity under the judge LM",
                "mauve": "MAUVE (LM features)", "perplexity": "perplexity under the frozen LM"
            ]
            for figure in judged + ["mauve", "perplexity"] {
                let label = labels[figure]!
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
        try markdown(plots: plots.keys.sorted(), curves: curves).write(
            to: folder.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
    }

    /// Column headers of the figures.
    static let headers = [
        "judge_mauve": "MAUVE (judge) ↑", "judge_perplexity": "perplexity (judge LM)",
        "mauve": "MAUVE (LM features)", "perplexity": "perplexity (frozen LM)", "diversity": "diversity ↑",
        "distinct_1": "distinct-1", "distinct_2": "distinct-2", "unique_openings": "unique openings",
        "memorization": "memorization (4-gram)", "mean_words": "words"
    ]

    func markdown(plots: [String], curves: [(name: String, file: String)]) -> String {
        var lines = [
            "# Does the loop pay? Generation report", "",
            "Produced by `\(results.command)` on \(results.date).",
            "MAUVE reference: \(results.referencePassages) held-out human passages (disjoint from the human row); sampler: \(results.sampler).",
            ""
        ]
        if let findings { lines += ["## Findings", "", findings.trimmingCharacters(in: .whitespacesAndNewlines), ""] }
        // The judges' and the latents' Fréchet distance are columns only when some row has them (older results have none).
        let judged = GenerationScores.judgeNames.filter { key in results.rows.contains { $0.mean[key] != nil } }
        let latentDistance = GenerationResults.Row.latentDistance
        let columns: [(key: String, header: String)] =
            judged.map { ($0, Self.headers[$0]!) }
            + GenerationScores.names.map { ($0, Self.headers[$0]!) }
            + (results.rows.contains { $0.mean[latentDistance] != nil } ? [(latentDistance, "latent FD ↓")] : [])
        lines += [
            "## Systems", "",
            "| system | parameters | samples × seeds | " + columns.map(\.header).joined(separator: " | ") + " | s / sample |",
            "|---|---:|---:|" + String(repeating: "---:|", count: columns.count + 1)
        ]
        for row in results.rows {
            let cells = columns.map { column -> String in
                guard let m = row.mean[column.key] else { return "–" }
                return row.seeds > 1 ? String(format: "%.3f ± %.3f", m, row.std[column.key] ?? 0) : String(format: "%.3f", m)
            }
            let parameters = row.parameters > 0 ? String(format: "%.2fM", Double(row.parameters) / 1e6) : "–"
            let seconds = row.secondsPerSample > 0 ? String(format: "%.3f", row.secondsPerSample) : "–"
            lines.append(
                "| \(row.name) | \(parameters) | \(row.samples) × \(row.seeds) | " + cells.joined(separator: " | ") + " | \(seconds) |")
        }
        var notes =
            judged.isEmpty
            ? []
            : [
                "The judges are models outside the system: MAUVE (judge) reads the features of an independent sentence encoder (all-MiniLM-L6-v2, trained by others), perplexity (judge LM) is under a language model that neither the decoder nor the denoiser ever saw."
            ]
        notes.append(
            "MAUVE (LM features) and perplexity (frozen LM) use the bundle's frozen LM, which the decoder fuses: it is judge of its own text. Memorization is the share of a row's word 4-grams found in the training corpus."
        )
        if columns.contains(where: { $0.key == latentDistance }) {
            notes.append(
                "Latent FD is the Fréchet distance of a row's latents (the human row: the encoder's latents of its passages) to the encoder's latents of the MAUVE reference, as FID on images: how near the loop lands to the encoder's latents, before any decoder."
            )
        }
        lines += ["", notes.joined(separator: " "), ""]
        for row in results.rows {
            lines +=
                ["**\(row.name)**, first samples:", ""] + row.examples.map { "> " + $0.replacingOccurrences(of: "\n", with: " ") + "\n" }
        }
        if !results.stepsSweep.isEmpty {
            let sweepJudged = GenerationScores.judgeNames.filter { key in results.stepsSweep.contains { !$0.scores.value(key).isNaN } }
            let figures = sweepJudged + ["mauve", "perplexity", "diversity", "memorization"]
            lines += [
                "## Quality against loop steps", "",
                "| steps | " + figures.map { Self.headers[$0]! }.joined(separator: " | ") + " | s / sample | first sample |",
                "|---:|" + String(repeating: "---:|", count: figures.count + 1) + "---|"
            ]
            for point in results.stepsSweep {
                let cells = figures.map { String(format: "%.3f", point.scores.value($0)) }
                lines.append(
                    "| \(point.steps) | " + cells.joined(separator: " | ") + String(format: " | %.3f | ", point.secondsPerSample)
                        + point.example.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "\\|") + " |")
            }
            lines.append("")
            for plot in plots where plot.contains("_vs_") && !plot.hasPrefix("continuation") { lines += ["![\(plot)](\(plot))", ""] }
        }
        if !results.continuation.isEmpty {
            let judged = results.continuation.contains { $0.judgeMAUVE != nil }
            lines += [
                "## Continuations of held-out prompts", "",
                "\(results.prompts) held-out passages as prompts; each continuation is scored against the true next passage.", "",
                "| system | guidance | steps | ROUGE-L ↑ | " + (judged ? "MAUVE (judge) ↑ | " : "") + "MAUVE (LM features) | s / sample |",
                "|---|---:|---:|---:|" + (judged ? "---:|" : "") + "---:|---:|"
            ]
            for point in results.continuation {
                let judge = judged ? (point.judgeMAUVE.map { String(format: "%.3f | ", $0) } ?? "– | ") : ""
                lines.append(
                    "| \(point.system) | \(point.guidance.map { String(format: "%.1f", $0) } ?? "–") | \(point.steps.map(String.init) ?? "–") | "
                        + String(format: "%.3f | ", point.rougeL) + judge
                        + String(format: "%.3f | %.3f |", point.mauve, point.secondsPerSample))
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
