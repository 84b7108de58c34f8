import ArgumentParser
import Foundation
import NebulaModels

/// `nebula embed`: sentence embeddings from a sentence encoder such as the judge (all-MiniLM-L6-v2).
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings from a sentence-transformers BERT folder (e.g. the judge `make judge` installs).",
        discussion: """
            Reads one text per line of --input (or the --text values) and prints one JSON array of floats per text, \
            in order: the encoder's pooled (and, as its modules.json says, L2-normalised) vector.
            Example: nebula embed --model .build/judge/all-MiniLM-L6-v2 --text "Once upon a time, there was a cat."
            """
    )

    @Option(help: "Sentence encoder folder (config.json, model.safetensors, tokenizer.json, 1_Pooling/config.json).") var model: String
    @Option(help: "A file of texts, one per line.") var input: String?
    @Option(help: "A text to embed (repeatable).") var text: [String] = []

    func validate() throws {
        guard (input == nil) != text.isEmpty else { throw ValidationError("give --input FILE or one or more --text, not both") }
    }

    func run() throws {
        try reportingErrors {
            let encoder = try SentenceEncoder(folder: fileURL(model))
            let texts = try input.map { try readText($0).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) } ?? text
            for vector in encoder.embed(texts.last == "" ? Array(texts.dropLast()) : texts) {
                print("[" + vector.map { String(format: "%.7g", $0) }.joined(separator: ", ") + "]")
            }
        }
    }
}
