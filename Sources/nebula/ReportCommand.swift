import ArgumentParser
import Foundation
import NebulaEval

/// `nebula report`: the Markdown report of an `eval generation` run, with its plots.
struct WriteReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the generation report (Markdown + SVG plots) from `nebula eval generation` results."
    )

    @OptionGroup var bundle: BundleOptions
    @Option(help: "The results JSON written by `nebula eval generation --out`.") var results: String
    @Option(help: "The report folder (README.md and the plots; created).") var out: String
    @Option(help: "A Markdown file with your reading of the figures, placed under \"Findings\".") var findings: String?

    func run() throws {
        try reportingErrors {
            let measured = try readJSON(GenerationResults.self, fileURL(results))
            let reading = try findings.map { try readText($0) }
            let folders = try bundle.folders()
            let report = GenerationReport(
                results: measured,
                stages: [
                    ("lm", folders.languageModel),
                    ("autoencoder", folders.autoencoder),
                    ("diffusion", folders.diffusion)
                ],
                findings: reading)
            try report.write(to: fileURL(out))
            print("report → \(fileURL(out).appendingPathComponent("README.md").path)")
        }
    }
}
