import Foundation
import NebulaCore
import NebulaText
import XCTest

/// The labels file of `nebula train classifier`: passage<TAB>label lines, read strictly, errors naming file and line.
final class LabelledTextsTests: XCTestCase {
    func parse(_ text: String) throws -> [LabelledText] { try LabelledTexts.parse(Data(text.utf8), source: "labels.tsv") }

    func testLinesBlankLinesAndWindowsLineEnds() throws {
        let examples = try parse("Tom ran home.\tnarration\r\n\n  \n\"Hi!\" said Sue. \t dialogue \nA cat.\tnarration")
        XCTAssertEqual(
            examples,
            [
                LabelledText(text: "Tom ran home.", label: "narration"), LabelledText(text: "\"Hi!\" said Sue.", label: "dialogue"),
                LabelledText(text: "A cat.", label: "narration")
            ])
    }

    func testBadLinesNameTheFileAndLine() {
        let cases: [(String, String)] = [
            ("A cat.\tnarration\nno tab here\n", "labels.tsv:2: expected text<TAB>label, found 0 tabs"),
            ("a\tb\tc\n", "labels.tsv:1: expected text<TAB>label, found 2 tabs"),
            ("\tnarration\n", "labels.tsv:1: the text is empty"),
            ("A cat.\t \n", "labels.tsv:1: the label is empty"),
            ("\n\n", "labels.tsv: the corpus holds no text")
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try parse(text), text) { XCTAssertEqual($0.localizedDescription, message) }
        }
        XCTAssertThrowsError(try LabelledTexts.parse(Data([0x41, 0x09, 0x42, 0x0A, 0xFF, 0x41]), source: "labels.tsv")) {
            XCTAssertEqual($0.localizedDescription, "labels.tsv: invalid UTF-8 at byte offset 4")
        }
        XCTAssertThrowsError(try LabelledTexts.read(URL(fileURLWithPath: "/nonexistent/labels.tsv"))) {
            XCTAssertTrue($0.localizedDescription.hasPrefix("/nonexistent/labels.tsv: cannot read"), $0.localizedDescription)
        }
    }

    /// Random bytes either parse into non-empty texts and labels or fail with a one-line error naming the file.
    func testHostileBytesFailCleanly() {
        var random = SeededRandom(seed: 3)
        let alphabet: [UInt8] = [0x09, 0x0A, 0x0D, 0x20, 0x41, 0x61, 0x22, 0xC3, 0xA9, 0xFF, 0x00]
        for _ in 0..<300 {
            let bytes = (0..<random.next(below: 40)).map { _ in alphabet[random.next(below: alphabet.count)] }
            do {
                for example in try LabelledTexts.parse(Data(bytes), source: "fuzz.tsv") {
                    XCTAssertFalse(example.text.isEmpty || example.label.isEmpty || example.text.contains("\t"))
                }
            } catch {
                XCTAssertTrue(error.localizedDescription.hasPrefix("fuzz.tsv"), error.localizedDescription)
                XCTAssertFalse(error.localizedDescription.contains("\n"))
            }
        }
    }
}
