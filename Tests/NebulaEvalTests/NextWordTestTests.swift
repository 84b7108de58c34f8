import XCTest
@testable import NebulaEval

final class NextWordTestTests: XCTestCase {
    func testFirstWordOfAContinuation() {
        XCTAssertEqual(NextWordTest.firstWord(" mat").0, "mat")
        XCTAssertFalse(NextWordTest.firstWord(" mat").1, "a word may still continue")
        XCTAssertEqual(NextWordTest.firstWord(" mat.").0, "mat")
        XCTAssertTrue(NextWordTest.firstWord(" mat.").1)
        XCTAssertEqual(NextWordTest.firstWord(" don't go").0, "don't")
        XCTAssertEqual(NextWordTest.firstWord("nd then").0, "nd", "no leading space: the model continued the prompt's word")
        XCTAssertTrue(NextWordTest.firstWord(" ,").1)
    }

    func testCasesAreCutAtWordBoundaries() {
        let documents = ["Once upon a time, there was a girl named Lily. She liked to play.", "Too short."]
        let cases = NextWordTest.cases(from: documents, count: 100, minimumWords: 4)
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            XCTAssertTrue(documents[0].hasPrefix(c.prompt + " " + c.expected), "\(c)")
            XCTAssertTrue(c.expected.allSatisfy { $0.isLetter || $0 == "'" })
            XCTAssertGreaterThanOrEqual(c.prompt.split(separator: " ").count, 4)
        }
        XCTAssertEqual(Set(cases.map(\.expected)).count, cases.count, "each boundary is used once")
        XCTAssertEqual(cases, NextWordTest.cases(from: documents, count: 100, minimumWords: 4), "seeded: the same cases each time")
    }

    func testCasesFromAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nextword-\(UUID().uuidString).tsv")
        defer { try? FileManager.default.removeItem(at: url) }
        try "# comment\nThe cat sat on the\tmat\n\nOnce upon a\ttime\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertEqual(
            try NextWordTest.cases(fromFile: url),
            [.init(prompt: "The cat sat on the", expected: "mat"), .init(prompt: "Once upon a", expected: "time")])
        try "no tab here\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try NextWordTest.cases(fromFile: url)) { XCTAssertTrue($0.localizedDescription.contains("line 1")) }
    }
}
