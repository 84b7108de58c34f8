import Foundation
import XCTest
@testable import NebulaText

final class CorpusTests: XCTestCase {
    private func write(_ bytes: [UInt8], _ name: String, in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    private func write(_ text: String, _ name: String, in folder: URL) throws -> URL {
        try write(Array(text.utf8), name, in: folder)
    }

    func testEndOfTextSeparatedText() throws {
        let folder = try temporaryFolder(self)
        let url = try write("One.\nStill one.\n<|endoftext|>\n\nTwo.\r\n<|endoftext|>\n<|endoftext|>\nThree", "a.txt", in: folder)
        XCTAssertEqual(try Corpus(contentsOf: url).documents, ["One.\nStill one.", "Two.", "Three"])
        // Small chunks give the same documents (lines span chunk boundaries).
        var streamed: [String] = []
        try Corpus.forEachDocument(at: url, chunkSize: 3) { streamed.append($0) }
        XCTAssertEqual(streamed, ["One.\nStill one.", "Two.", "Three"])
    }

    func testBlankLineSeparatedText() throws {
        let folder = try temporaryFolder(self)
        let url = try write("Para one\nline two\n\n\n  \nPara two\n", "a.txt", in: folder)
        XCTAssertEqual(
            try Corpus(contentsOf: url, options: CorpusOptions(separator: .blankLines)).documents,
            ["Para one\nline two", "Para two"])
    }

    func testJSONLinesAndFolders() throws {
        let folder = try temporaryFolder(self)
        _ = try write("{\"text\": \"first\"}\n\n{\"text\": \"second \\u00e9\", \"id\": 2}\n", "b.jsonl", in: folder)
        _ = try write("zero", "a.txt", in: folder)
        _ = try write("ignored", "notes.md", in: folder)
        XCTAssertEqual(try Corpus(contentsOf: folder).documents, ["zero", "first", "second é"])
    }

    func testInvalidUTF8NamesFileAndOffset() throws {
        let folder = try temporaryFolder(self)
        let url = try write(Array("ok line\nbad ".utf8) + [0xC3, 0x28] + Array(" rest".utf8), "bad.txt", in: folder)
        XCTAssertThrowsError(try Corpus(contentsOf: url)) { error in
            XCTAssertEqual(error as? CorpusError, .invalidUTF8(path: url.path, offset: 12))
            XCTAssertTrue(error.localizedDescription.contains("bad.txt"))
            XCTAssertTrue(error.localizedDescription.contains("12"))
        }
        XCTAssertThrowsError(try Corpus.forEachDocument(at: url, chunkSize: 5) { _ in }) { error in
            XCTAssertEqual(error as? CorpusError, .invalidUTF8(path: url.path, offset: 12))
        }
        let replaced = try Corpus(contentsOf: url, options: CorpusOptions(replaceInvalidUTF8: true))
        XCTAssertEqual(replaced.documents, ["ok line\nbad \u{FFFD}( rest"])
        // Overlong encodings, surrogates and truncated sequences are invalid too.
        for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xFF]] {
            XCTAssertEqual(UTF8Validation.firstInvalidOffset(in: ([0x41] + bad)[...]), 1, "\(bad)")
        }
        XCTAssertNil(UTF8Validation.firstInvalidOffset(in: Array("aé€😀".utf8)[...]))
    }

    func testBadJSONLines() throws {
        let folder = try temporaryFolder(self)
        let cases: [(String, String)] = [
            ("{\"text\": \"ok\"}\n{not json}\n", "2: not valid JSON"),
            ("{\"text\": \"ok\"}\n{\"body\": \"x\"}\n", "2: no \"text\" string field"),
            ("[1, 2]\n", "1: expected a JSON object"),
            ("{\"text\": 5}\n", "1: no \"text\"")
        ]
        for (index, (content, message)) in cases.enumerated() {
            let url = try write(content, "c\(index).jsonl", in: folder)
            XCTAssertThrowsError(try Corpus(contentsOf: url)) { error in
                XCTAssertTrue(error.localizedDescription.contains("c\(index).jsonl:\(message)"), error.localizedDescription)
            }
        }
    }

    func testEmptyCorporaFailClearly() throws {
        let folder = try temporaryFolder(self)
        for (name, content) in [
            ("empty.txt", ""), ("blank.txt", "\n\n<|endoftext|>\n\n"), ("empty.jsonl", "\n"),
            ("emptytext.jsonl", "{\"text\": \"\"}\n")
        ] {
            let url = try write(content, name, in: folder)
            XCTAssertThrowsError(try Corpus(contentsOf: url)) { error in
                XCTAssertEqual(error as? CorpusError, .empty(path: url.path))
                XCTAssertTrue(error.localizedDescription.contains("no text"))
            }
        }
        let emptyFolder = folder.appendingPathComponent("nothing")
        try FileManager.default.createDirectory(at: emptyFolder, withIntermediateDirectories: true)
        XCTAssertThrowsError(try Corpus(contentsOf: emptyFolder)) { XCTAssertEqual($0 as? CorpusError, .empty(path: emptyFolder.path)) }
        XCTAssertThrowsError(try Corpus(contentsOf: folder.appendingPathComponent("missing.txt"))) { error in
            XCTAssertTrue(error.localizedDescription.contains("missing.txt"))
        }
    }

    func testTinyStoriesDocuments() throws {
        let v2 = try Corpus(contentsOf: SharedData.url("tinystories/tinystories_v2_10k.txt"))
        XCTAssertEqual(v2.documents.count, 1728)  // 1727 separator lines
        XCTAssertTrue(v2.documents.allSatisfy { !$0.isEmpty && !$0.contains("<|endoftext|>") })
    }

    func testSentenceSplitterKeepsTokenization() throws {
        let text = "Hi. Bye!\nOk \"Yes.\" she said.  Then?\n\n  Next line 3.5 is fine"
        let sentences = SentenceSplitter.sentences(in: text)
        XCTAssertEqual(sentences, ["Hi.", " Bye!", "\nOk \"Yes.\"", " she said.", "  Then?", "\n\n  Next line 3.5 is fine"])
        XCTAssertEqual(sentences.joined(), text)
        let gpt2 = try SharedData.gpt2()
        XCTAssertEqual(sentences.flatMap { gpt2.encode(String($0)) }, gpt2.encode(text))
    }

    func testCompleteSentencesDropsOnlyAnUnfinishedEnd() {
        XCTAssertEqual(SentenceSplitter.completeSentences(in: "Hi. Bye! The cat sat on"), "Hi. Bye!")
        XCTAssertEqual(SentenceSplitter.completeSentences(in: "She said, \"Yes.\" He ran"), "She said, \"Yes.\"")
        XCTAssertEqual(SentenceSplitter.completeSentences(in: "Hi. \"Bye!\" "), "Hi. \"Bye!\" ")  // finished: unchanged
        XCTAssertEqual(SentenceSplitter.completeSentences(in: "no sentence ends here"), "no sentence ends here")
        XCTAssertEqual(SentenceSplitter.completeSentences(in: ""), "")
    }
}

final class AutoSeparatorTests: XCTestCase {
    func testAutoPicksTheSeparatorPerFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-auto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "One story.\n\nStill the first story.\n<|endoftext|>\nTwo.\n".write(
            to: folder.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try "Paragraph one.\n\nParagraph two.\n".write(to: folder.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        let corpus = try Corpus(contentsOf: folder, options: CorpusOptions(separator: .auto))
        XCTAssertEqual(corpus.documents, ["One story.\n\nStill the first story.", "Two.", "Paragraph one.", "Paragraph two."])
    }
}
