import ArgumentParser
import Foundation
import NebulaText

/// `nebula tokenizer train|encode|decode`.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a tokenizer, or encode and decode text with one.",
        subcommands: [TrainTokenizer.self, EncodeText.self, DecodeIDs.self])
}

extension CorpusOptions.Separator: ExpressibleByArgument {}

struct TrainTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level BPE (or character) tokenizer on a corpus.",
        discussion: "Writes vocab.json, merges.txt and tokenizer.json (BPE) or char_tokenizer.json (--char) into --out.")

    @Option(help: "A .txt or .jsonl file, or a folder of them.") var data: String
    @Option(help: "Vocabulary size, special tokens included.") var vocabSize: Int = 4096
    @Option(help: "The output folder.") var out: String
    @Option(help: "How .txt documents are separated: endOfText, blankLines, or auto (per file).") var separator: CorpusOptions.Separator =
        .auto
    @Option(name: .customLong("special"), help: "A special token (repeatable); default <|endoftext|> and <|pad|>.")
    var specials: [String] = []
    @Option(help: "Never merge a pair seen fewer times.") var minFrequency = 2
    @Flag(help: "A character tokenizer (the corpus's characters) instead of BPE.") var char = false
    @Flag(help: "Replace invalid UTF-8 by U+FFFD instead of failing.") var replaceInvalidUtf8 = false

    func validate() throws {
        if !char && vocabSize < 257 { throw ValidationError("--vocab-size must be at least 257 for BPE") }
    }

    func run() throws {
        try reportingErrors {
            let options = CorpusOptions(separator: separator, replaceInvalidUTF8: replaceInvalidUtf8)
            let progress = ProgressLine()
            let specials = specials.isEmpty ? [SpecialToken.endOfText, SpecialToken.pad] : specials
            let output = URL(fileURLWithPath: out)
            if char {
                var characters = Set<Unicode.Scalar>()
                try Corpus.forEachDocument(at: URL(fileURLWithPath: data), options: options) { document in
                    characters.formUnion(document.unicodeScalars)
                }
                characters.insert("\n")  // documents are joined by line breaks
                let tokenizer = CharTokenizer(characters: characters.sorted(), specialTokens: specials)
                try tokenizer.save(to: output)
                progress.finish(
                    "\(tokenizer.vocabularySize) tokens (characters + specials) → \(output.appendingPathComponent(CharTokenizer.fileName).path)"
                )
                return
            }
            let start = Date()
            let mergeStart = Box(start)
            let trainer = BPETrainer(vocabularySize: vocabSize, specialTokens: specials, minimumFrequency: minFrequency) { step in
                switch step {
                case .counting(let done, let total):
                    mergeStart.value = Date()
                    let elapsed = Date().timeIntervalSince(start)
                    let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
                    progress.show(
                        "reading and counting words \(megabytes(done)) / \(megabytes(total)), ETA \(String(format: "%.1f", eta)) s")
                case .merging(let done, let total):
                    let elapsed = Date().timeIntervalSince(mergeStart.value)
                    let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
                    progress.show("merges \(done) / \(total), \(String(format: "%.1f", elapsed)) s, ETA \(String(format: "%.1f", eta)) s")
                }
            }
            let tokenizer = try trainer.train(corpus: URL(fileURLWithPath: data), options: options)
            try tokenizer.save(to: output)
            let shortfall =
                tokenizer.vocabularySize < vocabSize
                ? " (fewer than \(vocabSize): no more pairs occur --min-frequency \(minFrequency) times)" : ""
            progress.finish(
                "\(tokenizer.vocabularySize) tokens\(shortfall), \(tokenizer.merges.count) merges in \(String(format: "%.2f", Date().timeIntervalSince(start))) s → \(output.path)/{vocab.json, merges.txt, tokenizer.json}"
            )
        }
    }
}

struct EncodeText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Print the token ids of UTF-8 text (standard input or --file) as one JSON array.")

    @Option(help: "A tokenizer folder (encoder.json + vocab.bpe, vocab.json + merges.txt, tokenizer.json or char_tokenizer.json).")
    var tokenizer: String
    @Option(help: "Read this file instead of standard input.") var file: String?
    @Flag(help: "Recognise special tokens such as <|endoftext|> (otherwise they are plain text).") var allowSpecial = false

    func run() throws {
        try reportingErrors {
            let tokenizer = try loadTokenizer(directory: URL(fileURLWithPath: self.tokenizer))
            let name = file ?? "<stdin>"
            let data: Data
            if let file {
                do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                    throw CorpusError.unreadable(path: file, reason: "no such file or unreadable")
                }
            } else {
                data = FileHandle.standardInput.readDataToEndOfFile()
            }
            let text = try Corpus.decodeUTF8(data, source: name)
            let allowed: AllowedSpecial = allowSpecial ? .all : .none
            let ids: [Int]
            if let bpe = tokenizer as? ByteLevelBPE {
                ids = bpe.encodeParallel(text, allowedSpecial: allowed)
            } else {
                ids = try tokenizer.encode(text, allowedSpecial: allowed)
            }
            var json = "["
            json.reserveCapacity(ids.count * 6)
            for (index, id) in ids.enumerated() {
                if index > 0 { json += "," }
                json += String(id)
            }
            FileHandle.standardOutput.write(Data((json + "]\n").utf8))
        }
    }
}

struct DecodeIDs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Print the text of a JSON array of token ids read from standard input (or --file).")

    @Option(help: "A tokenizer folder.") var tokenizer: String
    @Option(help: "Read this file instead of standard input.") var file: String?

    func run() throws {
        try reportingErrors {
            let tokenizer = try loadTokenizer(directory: URL(fileURLWithPath: self.tokenizer))
            let name = file ?? "<stdin>"
            let data = try file.map { Data(try readText($0).utf8) } ?? FileHandle.standardInput.readDataToEndOfFile()
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any],
                let ids = array.map({ ($0 as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } }) as [Int?]?,
                !ids.contains(nil)
            else {
                throw DecodeInputError(source: name)
            }
            let text = try tokenizer.decode(ids.map { $0! })
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    struct DecodeInputError: LocalizedError {
        let source: String
        var errorDescription: String? { "\(source): expected a JSON array of integer token ids" }
    }
}

/// One status line on standard error, redrawn at most ten times a second.
final class ProgressLine: @unchecked Sendable {
    private var last = Date.distantPast
    private let lock = NSLock()
    private let enabled = isatty(STDERR_FILENO) != 0

    func show(_ message: @autoclosure () -> String) {
        lock.lock(); defer { lock.unlock() }
        guard Date().timeIntervalSince(last) > 0.1 else { return }
        last = Date()
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K\(message())".utf8)) }
    }

    func finish(_ message: String) {
        FileHandle.standardError.write(Data(((enabled ? "\r\u{1B}[K" : "") + message + "\n").utf8))
    }
}

/// A mutable value shared with a progress closure.
private final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

private func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
