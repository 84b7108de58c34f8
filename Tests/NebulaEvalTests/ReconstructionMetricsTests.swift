import XCTest
@testable import NebulaEval

final class ReconstructionMetricsTests: XCTestCase {
    struct Fixture: Decodable {
        struct Pair: Decodable { var reference: String; var hypothesis: String }
        struct Corpus: Decodable {
            var score: Double; var counts: [Int]; var totals: [Int]; var bp: Double; var sys_len: Int; var ref_len: Int
        }
        struct Rouge: Decodable { var precision: Double; var recall: Double; var f: Double }
        var pairs: [Pair]
        var corpus_bleu: Corpus
        var corpus_bleu_13a: Corpus
        var sentence_bleu: [String: [Double]]
        var tokens_13a: [[String]]
        var rouge_l: [Rouge]
        var rouge_l_lowercased: [Rouge]
    }

    // MARK: hand-computed values

    func testTokenAccuracyAndExactMatchByHand() {
        let references = [[1, 2, 3, 4], [5, 6], [7, 8, 9]]
        let reconstructions = [[1, 2, 3, 4], [5, 0, 9, 9], [7, 8]]
        // 4 + 1 + 2 right of 4 + 2 + 3 reference tokens; only the first passage is exact.
        XCTAssertEqual(
            ReconstructionMetrics.tokenAccuracy(references: references, reconstructions: reconstructions), 7.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(
            ReconstructionMetrics.exactMatchRate(references: references, reconstructions: reconstructions), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(ReconstructionMetrics.tokenAccuracy(references: [[Int]](), reconstructions: []), 0)
    }

    func testBLEUByHand() {
        // Hypothesis "the cat sat on mat" vs reference "the cat sat on the mat":
        // precisions 5/5, 3/4, 2/3, 1/2; brevity penalty exp(1 − 6/5).
        let bleu = BLEU.corpus(hypotheses: ["the cat sat on mat"], references: ["the cat sat on the mat"])
        let expected = exp(1 - 6.0 / 5) * pow(1.0 * 0.75 * (2.0 / 3) * 0.5, 0.25) * 100
        XCTAssertEqual(bleu.score, expected, accuracy: 1e-9)
        XCTAssertEqual(bleu.matches, [5, 3, 2, 1])
        XCTAssertEqual(bleu.totals, [5, 4, 3, 2])
        // Clipping: "the the the" against "the cat" matches one "the" only.
        XCTAssertEqual(BLEU.clippedMatches(["the", "the", "the"], ["the", "cat"], order: 1).0, 1)
        XCTAssertEqual(BLEU.corpus(hypotheses: ["a b c d"], references: ["a b c d"]).score, 100, accuracy: 1e-9)
        XCTAssertEqual(BLEU.corpus(hypotheses: ["w x y z"], references: ["a b c d"]).score, 0)
        XCTAssertEqual(BLEU.corpus(hypotheses: [""], references: ["a b c d"]).score, 0)
        // Token ids work the same as words.
        XCTAssertEqual(
            BLEU.corpus(hypotheses: [[1, 2, 3, 4, 6]], references: [[1, 2, 3, 4, 5, 6]]).score,
            BLEU.corpus(hypotheses: ["a b c d f"], references: ["a b c d e f"]).score, accuracy: 1e-12)
    }

    func testSentenceBLEUSmoothingByHand() {
        // "a b" vs "a c": 1-gram 1/2, 2-gram 0/1. Effective order 2.
        let none = BLEU.sentence(hypothesis: "a b", reference: "a c", smoothing: .none)
        XCTAssertEqual(none.score, 0, accuracy: 1e-9)
        let exponential = BLEU.sentence(hypothesis: "a b", reference: "a c")
        XCTAssertEqual(exponential.score, 100 * sqrt(0.5 * 0.5), accuracy: 1e-9)  // zero → 1/(2·1)
        let floor = BLEU.sentence(hypothesis: "a b", reference: "a c", smoothing: .floor(0.1))
        XCTAssertEqual(floor.score, 100 * sqrt(0.5 * 0.1), accuracy: 1e-9)
        let addOne = BLEU.sentence(hypothesis: "a b", reference: "a c", smoothing: .addK(1))
        // k is added to every order ≥ 2, even those with no n-grams: 1/2, (0+1)/(1+1), 1/1, 1/1.
        XCTAssertEqual(addOne.score, 100 * pow(0.5 * 0.5 * 1 * 1, 0.25), accuracy: 1e-9)
    }

    func testRougeLByHand() {
        let r = RougeL(reference: "the cat sat on the mat", hypothesis: "the cat on a mat")
        XCTAssertEqual(r.precision, 4.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(r.recall, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(r.f, 2 * 0.8 * (4.0 / 6) / (0.8 + 4.0 / 6), accuracy: 1e-12)
        XCTAssertEqual(RougeL(reference: "a b", hypothesis: "").f, 0)
        XCTAssertEqual(RougeL(reference: "The Cat", hypothesis: "the cat").f, 0)
        XCTAssertEqual(RougeL(reference: "The Cat", hypothesis: "the cat", lowercased: true).f, 1)
        XCTAssertEqual(RougeL.longestCommonSubsequence(Array("ABCBDAB"), Array("BDCABA")), 4)
    }

    func testMetricsEncodeWithTheCommandsKeys() throws {
        let m = ReconstructionMetrics(
            referenceTokens: [[5, 6, 7]], reconstructedTokens: [[5, 6, 8]],
            referenceTexts: ["a b c"], reconstructedTexts: ["a b d"])
        XCTAssertEqual(m.tokenAccuracy, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.exactMatch, 0)
        XCTAssertEqual(m.rougeL, 2.0 / 3, accuracy: 1e-12)
        let keys = try JSONSerialization.jsonObject(with: JSONEncoder().encode(m)) as! [String: Double]
        XCTAssertEqual(Set(keys.keys), ["token_accuracy", "exact_match", "bleu4", "rouge_l"])
    }

    // MARK: against sacrebleu and rouge-score (reference/eval/reconstruction_reference.py)

    func testCorpusBLEUMatchesSacrebleu() throws {
        let fixture = try loadFixture("reconstruction", as: Fixture.self)
        for (tokenization, expected) in [(BLEU.Tokenization.whitespace, fixture.corpus_bleu), (.thirteenA, fixture.corpus_bleu_13a)] {
            let bleu = BLEU.corpus(
                hypotheses: fixture.pairs.map(\.hypothesis), references: fixture.pairs.map(\.reference),
                tokenization: tokenization)
            XCTAssertEqual(bleu.matches, expected.counts)
            XCTAssertEqual(bleu.totals, expected.totals)
            XCTAssertEqual(bleu.hypothesisLength, expected.sys_len)
            XCTAssertEqual(bleu.referenceLength, expected.ref_len)
            XCTAssertEqual(bleu.brevityPenalty, expected.bp, accuracy: 1e-12)
            XCTAssertEqual(bleu.score, expected.score, accuracy: 1e-9)
        }
    }

    func testTokenizer13aMatchesSacrebleu() throws {
        let fixture = try loadFixture("reconstruction", as: Fixture.self)
        let texts = fixture.pairs.flatMap { [$0.reference, $0.hypothesis] }
        for (text, expected) in zip(texts, fixture.tokens_13a) {
            XCTAssertEqual(Words.split13a(text).map(String.init), expected, text)
        }
        XCTAssertEqual(
            Words.split13a("Lily said, \"Hi!\" at 3.5-4pm."),
            ["Lily", "said", ",", "\"", "Hi", "!", "\"", "at", "3.5", "-", "4pm", "."])
    }

    func testSentenceBLEUMatchesSacrebleuForEverySmoothing() throws {
        let fixture = try loadFixture("reconstruction", as: Fixture.self)
        let methods: [(String, BLEU.Tokenization, BLEU.Smoothing)] = [
            ("none", .whitespace, .none), ("exp", .whitespace, .exponential), ("floor", .whitespace, .floor(0.1)),
            ("add-k", .whitespace, .addK(1)), ("13a", .thirteenA, .exponential)
        ]
        for (name, tokenization, smoothing) in methods {
            let expected = try XCTUnwrap(fixture.sentence_bleu[name])
            XCTAssertEqual(expected.count, fixture.pairs.count)
            for (pair, value) in zip(fixture.pairs, expected) {
                let bleu = BLEU.sentence(
                    hypothesis: pair.hypothesis, reference: pair.reference,
                    tokenization: tokenization, smoothing: smoothing)
                XCTAssertEqual(bleu.score, value, accuracy: 1e-9, "\(name): \(pair)")
            }
        }
    }

    func testRougeLMatchesRougeScore() throws {
        let fixture = try loadFixture("reconstruction", as: Fixture.self)
        for (lowercased, expected) in [(false, fixture.rouge_l), (true, fixture.rouge_l_lowercased)] {
            for (pair, value) in zip(fixture.pairs, expected) {
                let r = RougeL(reference: pair.reference, hypothesis: pair.hypothesis, lowercased: lowercased)
                XCTAssertEqual(r.precision, value.precision, accuracy: 1e-12, "\(pair)")
                XCTAssertEqual(r.recall, value.recall, accuracy: 1e-12, "\(pair)")
                XCTAssertEqual(r.f, value.f, accuracy: 1e-12, "\(pair)")
            }
        }
    }
}
