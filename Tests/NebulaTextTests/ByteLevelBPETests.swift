import Foundation
import NebulaCore
import XCTest
@testable import NebulaText

final class ByteLevelBPETests: XCTestCase {
    func testRoundTripOfRandomUnicode() throws {
        let gpt2 = try SharedData.gpt2()
        var random = SeededRandom(seed: 1)
        let pools: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x09...0x0D, 0xA0...0x17F, 0x370...0x3FF, 0x400...0x4FF,
            0x600...0x6FF, 0x2000...0x206F, 0x3000...0x30FF, 0x4E00...0x4FFF,
            0x1F300...0x1F64F, 0x0...0x10FFFF
        ]
        for _ in 0..<300 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<random.next(below: 80) {
                let pool = pools[random.next(below: pools.count)]
                let value = pool.lowerBound + UInt32(random.next(below: Int(pool.upperBound - pool.lowerBound) + 1))
                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            }
            let text = String(scalars)
            let ids = gpt2.encode(text)
            XCTAssertEqual(try gpt2.decode(ids), text)
            XCTAssertEqual(gpt2.encodeParallel(text, threads: 2), ids)
        }
    }

    /// Large random texts of words, spaces and line breaks: cutting for parallel encoding never changes the ids.
    func testParallelEncodingOfRandomLargeTexts() throws {
        let gpt2 = try SharedData.gpt2()
        var random = SeededRandom(seed: 4)
        let parts = ["a", "word", " ", "  ", "\n", "\n\n", " \n", "\t", "'s", "!", "é", "東", "42", "\u{A0}", "\r\n", "<|endoftext|>"]
        for _ in 0..<3 {
            var text = ""
            while text.utf8.count < 300_000 { text += parts[random.next(below: parts.count)] }
            let serial = gpt2.encode(text)
            XCTAssertEqual(gpt2.encodeParallel(text, threads: 3), serial)
            XCTAssertEqual(gpt2.encodeParallel(text, allowedSpecial: .all, threads: 2), gpt2.encode(text, allowedSpecial: .all))
        }
    }

    func testRandomBytesNeverCrash() throws {
        let gpt2 = try SharedData.gpt2()
        var random = SeededRandom(seed: 2)
        for _ in 0..<300 {
            let bytes = (0..<random.next(below: 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let text = String(decoding: bytes, as: UTF8.self)  // invalid bytes become U+FFFD
            XCTAssertEqual(try gpt2.decode(gpt2.encode(text)), text)
            XCTAssertEqual(try gpt2.decodeBytes(gpt2.encode(text)), Array(text.utf8))
            // Random ids decode to some string (U+FFFD where the bytes are not UTF-8), never crash.
            let ids = (0..<random.next(below: 50)).map { _ in random.next(below: gpt2.vocabularySize) }
            let decoded = try gpt2.decode(ids)
            XCTAssertEqual(decoded, String(decoding: try gpt2.decodeBytes(ids), as: UTF8.self))
        }
    }

    func testInvalidUTF8DecodesToReplacementCharacter() throws {
        let gpt2 = try SharedData.gpt2()
        let loneContinuation = gpt2.encode("é")  // two byte tokens
        XCTAssertEqual(loneContinuation.count, 1)
        let byteID = gpt2.encode("\u{80}")  // C2 80: two ids, one per byte
        XCTAssertEqual(try gpt2.decode([byteID.last!]), "\u{FFFD}")
    }

    func testUnknownIDIsAnErrorNamingTheID() throws {
        let gpt2 = try SharedData.gpt2()
        XCTAssertThrowsError(try gpt2.decode([1, 50257])) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownTokenID(50257))
            XCTAssertTrue(error.localizedDescription.contains("50257"))
        }
        XCTAssertThrowsError(try gpt2.decode([-1]))
    }

    func testSpecialTokensOnlyWhenAllowed() throws {
        let gpt2 = try SharedData.gpt2()
        let text = "a<|endoftext|>b"
        XCTAssertFalse(gpt2.encode(text).contains(50256))
        XCTAssertEqual(gpt2.encode(text, allowedSpecial: .all), [64, 50256, 65])
        XCTAssertEqual(gpt2.encode(text, allowedSpecial: .only([SpecialToken.endOfText])), [64, 50256, 65])
        XCTAssertEqual(gpt2.encode(text, allowedSpecial: .only(["<|other|>"])), gpt2.encode(text))

        let extended = try gpt2.addingSpecialTokens(["<|pad|>", "<|user|>", SpecialToken.endOfText])
        XCTAssertEqual(extended.vocabularySize, 50259)
        XCTAssertEqual(extended.padID, 50257)
        XCTAssertEqual(extended.specialTokens["<|user|>"], 50258)
        XCTAssertEqual(extended.encode("<|user|>hi<|pad|>", allowedSpecial: .all), [50258, 5303, 50257])
        XCTAssertEqual(extended.encode("<|user|>hi", allowedSpecial: .only(["<|pad|>"])), gpt2.encode("<|user|>hi"))
        XCTAssertEqual(try extended.decode([50258, 5303, 50257]), "<|user|>hi<|pad|>")
        XCTAssertNotEqual(extended.fingerprint, gpt2.fingerprint)
    }

    /// Pieces above 64 bytes take the heap-based loop; it must merge exactly as the simple loop does.
    func testLongPiecesUseTheSameMergeOrder() throws {
        let gpt2 = try SharedData.gpt2()
        var random = SeededRandom(seed: 3)
        var texts = [
            String(repeating: "a", count: 1000), String(repeating: "ab", count: 300),
            "x" + String(repeating: "ing", count: 100), String(repeating: "!?.", count: 70)
        ]
        let letters = Array("etaoinshrdlu")
        for _ in 0..<50 {
            texts.append(String((0..<(65 + random.next(below: 300))).map { _ in letters[random.next(below: letters.count)] }))
        }
        for text in texts {
            let start = Array(text.utf8).map { gpt2.storage.byteIDs[Int($0)] }
            var simple = start, heap = start
            ByteLevelBPE.mergeShort(&simple, pairs: gpt2.storage.pairs)
            ByteLevelBPE.mergeLong(&heap, pairs: gpt2.storage.pairs)
            XCTAssertEqual(heap, simple)
            XCTAssertEqual(try gpt2.decode(gpt2.encode(text)), text)
        }
    }

    func testLoaderErrorsNameTheFile() throws {
        let folder = try temporaryFolder(self)
        XCTAssertThrowsError(try loadTokenizer(directory: folder)) { error in
            XCTAssertEqual(error as? TokenizerError, .noTokenizerFiles(directory: folder.path))
        }
        XCTAssertThrowsError(try loadTokenizer(directory: folder.appendingPathComponent("missing")))
        try Data("{\"a\": 0".utf8).write(to: folder.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\n".utf8).write(to: folder.appendingPathComponent("merges.txt"))
        XCTAssertThrowsError(try loadTokenizer(directory: folder)) { error in
            XCTAssertTrue(error.localizedDescription.contains("vocab.json"), error.localizedDescription)
        }
        try Data("{\"a\": 0}".utf8).write(to: folder.appendingPathComponent("vocab.json"))
        XCTAssertThrowsError(try loadTokenizer(directory: folder)) { error in
            XCTAssertTrue(error.localizedDescription.contains("byte"), error.localizedDescription)
        }
        let bytes = ByteLevelAlphabet.order.enumerated().map {
            "\(jsonQuoted(String(ByteLevelAlphabet.character(for: $0.element)))): \($0.offset)"
        }
        try Data("{\(bytes.joined(separator: ","))}".utf8).write(to: folder.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\nĠ t\nx\n".utf8).write(to: folder.appendingPathComponent("merges.txt"))
        XCTAssertThrowsError(try loadTokenizer(directory: folder)) { error in
            XCTAssertTrue(error.localizedDescription.contains("merges.txt"), error.localizedDescription)
            XCTAssertTrue(error.localizedDescription.contains("line 3"), error.localizedDescription)
        }
    }

    func testByteLevelAlphabet() {
        XCTAssertEqual(Set(ByteLevelAlphabet.order).count, 256)
        XCTAssertEqual(ByteLevelAlphabet.character(for: 0x20), "Ġ")
        XCTAssertEqual(ByteLevelAlphabet.character(for: 0x0A), "Ċ")
        XCTAssertEqual(ByteLevelAlphabet.bytes(of: "Ġhello"), [0x20] + Array("hello".utf8))
        XCTAssertNil(ByteLevelAlphabet.bytes(of: " "))
        for byte in 0...255 {
            XCTAssertEqual(ByteLevelAlphabet.bytes(of: String(ByteLevelAlphabet.character(for: UInt8(byte)))), [UInt8(byte)])
        }
    }
}
