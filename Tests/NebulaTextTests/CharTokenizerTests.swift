import Foundation
import XCTest
@testable import NebulaText

final class CharTokenizerTests: XCTestCase {
    func testVocabularyIsTheSortedCharacters() throws {
        let chars = CharTokenizer(corpus: "hello world\r\n")
        XCTAssertEqual(chars.characters, ["\n", "\r", " ", "d", "e", "h", "l", "o", "r", "w"])
        XCTAssertEqual(try chars.encode("hello"), [5, 4, 6, 6, 7])
        XCTAssertEqual(try chars.decode([5, 4, 6, 6, 7]), "hello")
        XCTAssertThrowsError(try chars.encode("hex")) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownCharacter("x"))
        }
        XCTAssertThrowsError(try chars.decode([10])) { XCTAssertEqual($0 as? TokenizerError, .unknownTokenID(10)) }
    }

    func testShakespeareHas65Characters() throws {
        let text = try String(contentsOf: SharedData.url("shakespeare/input.txt"), encoding: .utf8)
        let chars = CharTokenizer(corpus: text)
        XCTAssertEqual(chars.vocabularySize, 65)  // as nanoGPT's shakespeare_char
        let sample = String(text.prefix(5000))
        XCTAssertEqual(try chars.decode(chars.encode(sample)), sample)
    }

    func testSpecialTokensAndSaveLoad() throws {
        let chars = CharTokenizer(corpus: "abc é😀", specialTokens: [SpecialToken.endOfText, SpecialToken.pad])
        XCTAssertEqual(chars.endOfTextID, 6)
        XCTAssertEqual(chars.padID, 7)
        XCTAssertEqual(try chars.encode("a<|endoftext|>", allowedSpecial: .all), [1, 6])
        XCTAssertThrowsError(try chars.encode("a<|endoftext|>"))  // '<' is not a character of the corpus
        let folder = try temporaryFolder(self)
        try chars.save(to: folder)
        let loaded = try loadTokenizer(directory: folder)
        XCTAssertTrue(loaded is CharTokenizer)
        XCTAssertEqual(loaded.fingerprint, chars.fingerprint)
        XCTAssertEqual(try loaded.encode("é😀 a", allowedSpecial: .all), try chars.encode("é😀 a"))
    }
}
