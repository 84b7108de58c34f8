import Foundation
import XCTest
@testable import NebulaEval

final class DiversityAndMemorizationTests: XCTestCase {
    /// Written by reference/eval/diversity_reference.py (LD4LG's and SimCTG's definitions, Python sets).
    struct Fixture: Decodable {
        var training: [String]
        var samples: [String]
        var distinct_across: [String: Double]
        var distinct_within: [String: Double]
        var diversity_across: Double
        var diversity_within: Double
        var unique_openings: Double
        var memorization_4: Double
        var memorization_2: Double
    }

    // MARK: hand-computed values

    func testDiversityByHand() {
        let texts = ["the cat sat on the mat", "the cat sat on the rug"]
        XCTAssertEqual(Diversity.distinct(1, in: texts), 6.0 / 12, accuracy: 1e-12)  // the cat sat on mat rug
        XCTAssertEqual(Diversity.distinct(2, in: texts), 6.0 / 10, accuracy: 1e-12)
        XCTAssertEqual(Diversity.score(of: texts), 0.6 * (5.0 / 8) * (4.0 / 6), accuracy: 1e-12)
        // Within each text nothing repeats but "the" (twice per text).
        XCTAssertEqual(Diversity.distinct(1, in: texts, scope: .withinEachText), 10.0 / 12, accuracy: 1e-12)
        XCTAssertEqual(Diversity.score(of: texts, scope: .withinEachText), 1, accuracy: 1e-12)
        XCTAssertEqual(Diversity.uniqueOpenings(of: texts), 0.5)
        XCTAssertEqual(Diversity.uniqueOpenings(of: texts, words: 6), 1)
        XCTAssertEqual(Diversity.uniqueOpenings(of: ["a b", "a b", "a b c"]), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(Diversity.score(of: ["too short"]), 0)
    }

    func testMemorizationByHand() {
        let index = NGramIndex(documents: ["a b c d e", "x y z w"])
        XCTAssertEqual(index.count, 3)  // abcd, bcde, xyzw
        XCTAssertTrue(index.contains(["b", "c", "d", "e"]))
        XCTAssertFalse(index.contains(["d", "e", "x", "y"]), "n-grams stop at document boundaries")
        // "a b c d q": abcd found, bcdq not; "x y z w": found; "short": none.
        XCTAssertEqual(index.memorization(of: ["a b c d q", "x y z w", "short"]), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(index.memorization(of: []), 0)
    }

    // MARK: against the reference script

    func testDiversityMatchesReference() throws {
        let f = try loadFixture("diversity", as: Fixture.self)
        for n in 1...4 {
            XCTAssertEqual(Diversity.distinct(n, in: f.samples), f.distinct_across["\(n)"]!, accuracy: 1e-12)
            XCTAssertEqual(Diversity.distinct(n, in: f.samples, scope: .withinEachText), f.distinct_within["\(n)"]!, accuracy: 1e-12)
        }
        XCTAssertEqual(Diversity.score(of: f.samples), f.diversity_across, accuracy: 1e-12)
        XCTAssertEqual(Diversity.score(of: f.samples, scope: .withinEachText), f.diversity_within, accuracy: 1e-12)
        XCTAssertEqual(Diversity.uniqueOpenings(of: f.samples), f.unique_openings, accuracy: 1e-12)
    }

    func testMemorizationMatchesReference() throws {
        let f = try loadFixture("diversity", as: Fixture.self)
        XCTAssertEqual(NGramIndex(documents: f.training).memorization(of: f.samples), f.memorization_4, accuracy: 1e-12)
        XCTAssertEqual(NGramIndex(documents: f.training, order: 2).memorization(of: f.samples), f.memorization_2, accuracy: 1e-12)
    }

    func testMemorizationIndexIsFastOnMegabytes() {
        // ~4 MB of text in 20 000 documents of 40 words from a 2 000-word vocabulary.
        var state: UInt64 = 1
        func nextWord() -> String { state = state &* 6364136223846793005 &+ 1442695040888963407; return "w\((state >> 33) % 2000)" }
        let documents = (0..<20_000).map { _ in (0..<40).map { _ in nextWord() }.joined(separator: " ") }
        let start = Date()
        let index = NGramIndex(documents: documents)
        let built = Date()
        let share = index.memorization(of: Array(documents.prefix(1000)) + ["w1 w2 w3 w4 w5"])
        print(
            "NGramIndex: \(documents.reduce(0) { $0 + $1.utf8.count }) bytes, \(index.count) 4-grams, "
                + "built in \(built.timeIntervalSince(start)) s, 1 000 queries in \(Date().timeIntervalSince(built)) s")
        XCTAssertGreaterThan(share, 0.99)
        XCTAssertLessThan(built.timeIntervalSince(start), 20, "debug builds are slow; release takes well under a second")
    }
}
