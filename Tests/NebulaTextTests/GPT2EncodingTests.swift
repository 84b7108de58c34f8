import Foundation
import XCTest
@testable import NebulaText

final class GPT2EncodingTests: XCTestCase {
    func testEveryEncodeCaseMatchesTiktoken() throws {
        let gpt2 = try SharedData.gpt2()
        let lines = try String(contentsOf: SharedData.url("gpt2/encode_cases.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 50)
        for (index, line) in lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let text = object["text"] as! String
            let expected = (object["ids"] as! [NSNumber]).map(\.intValue)
            XCTAssertEqual(gpt2.encode(text), expected, "case \(index): \(text.prefix(60).debugDescription)")
            XCTAssertEqual(gpt2.encodeParallel(text, threads: 2), expected, "case \(index), parallel")
            XCTAssertEqual(try gpt2.decode(expected), text, "case \(index) decode")
        }
    }

    /// Parallel encoding cuts large texts into chunks; the ids must not change.
    func testParallelEncodingOfWholeFilesMatchesSerial() throws {
        let gpt2 = try SharedData.gpt2()
        for file in ["shakespeare/input.txt", "tinystories/tinystories_v2_10k.txt"] {
            let text = try String(contentsOf: SharedData.url(file), encoding: .utf8)
            let serial = gpt2.encode(text)
            XCTAssertEqual(gpt2.encodeParallel(text, threads: 4), serial, file)
            XCTAssertEqual(
                gpt2.encodeParallel(text, allowedSpecial: .all, threads: 3).filter { $0 == 50256 }.count,
                text.components(separatedBy: SpecialToken.endOfText).count - 1)
        }
    }

    func testKnownEncodings() throws {
        let gpt2 = try SharedData.gpt2()
        XCTAssertEqual(gpt2.vocabularySize, 50257)
        XCTAssertEqual(gpt2.endOfTextID, 50256)
        XCTAssertEqual(gpt2.encode("Hello world"), [15496, 995])
        XCTAssertEqual(gpt2.encode(""), [])
    }

    func testPreTokenizerPieces() {
        func pieces(_ text: String) -> [String] {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { buffer in
                PreTokenizer.pieces(of: buffer).map { String(decoding: bytes[$0], as: UTF8.self) }
            }
        }
        XCTAssertEqual(pieces("Hello world's  end"), ["Hello", " world", "'s", " ", " end"])
        XCTAssertEqual(pieces("a\n\nb"), ["a", "\n", "\n", "b"])
        XCTAssertEqual(pieces("a \n b"), ["a", " \n", " b"])
        XCTAssertEqual(pieces("x   "), ["x", "   "])
        XCTAssertEqual(pieces("I'LL we'll ''s"), ["I", "'", "LL", " we", "'ll", " ''", "s"])
        XCTAssertEqual(pieces("abc123 4.5!?"), ["abc", "123", " 4", ".", "5", "!?"])
        XCTAssertEqual(pieces("héllo wörld 東京 ١٢٣"), ["héllo", " wörld", " 東京", " ١٢٣"])
        XCTAssertEqual(pieces("a\u{00A0}b"), ["a", "\u{00A0}", "b"])
        XCTAssertEqual(pieces("e\u{301}"), ["e", "\u{301}"])
    }
}
