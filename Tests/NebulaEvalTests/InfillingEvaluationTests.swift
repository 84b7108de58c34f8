import XCTest
import NebulaDiffusion
@testable import NebulaEval

/// The infilling protocol's cuts and scores.
final class InfillingEvaluationTests: XCTestCase {
    func testTokenF1CountsTheOverlapOfMultisets() {
        XCTAssertEqual(InfillSelection.tokenF1([1, 2, 3], [1, 2, 3]), 1)
        XCTAssertEqual(InfillSelection.tokenF1([4, 5], [1, 2]), 0)
        XCTAssertEqual(InfillSelection.tokenF1([], []), 1)
        // overlap 2 ({1, 1}): precision 2/3, recall 2/4
        XCTAssertEqual(InfillSelection.tokenF1([1, 1, 9], [1, 1, 1, 2]), 2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5), accuracy: 1e-12)
    }

    func testANameOutsideThePrefixAndSuffixIsInconsistent() {
        let prefix = "Tom had a red ball. One day he", suffix = "and Sue laughed."
        XCTAssertTrue(InfillingEvaluation.namesConsistent(middle: "gave it to Sue. They played", prefix: prefix, suffix: suffix))
        XCTAssertFalse(InfillingEvaluation.namesConsistent(middle: "gave it to Max. They played", prefix: prefix, suffix: suffix))
        XCTAssertTrue(InfillingEvaluation.namesConsistent(middle: "said, \"I can play.\" Then", prefix: prefix, suffix: suffix))
        // A sentence start is not a name; the prefix's last sentence decides whether the middle starts one.
        XCTAssertTrue(InfillingEvaluation.namesConsistent(middle: "Then they ran home.", prefix: "It was late.", suffix: suffix))
        XCTAssertFalse(InfillingEvaluation.namesConsistent(middle: "Then they ran home.", prefix: "It was late and", suffix: suffix))
    }

    /// Cuts leave at least the minimum context on both sides, draw gaps from the range, skip short passages and
    /// repeat from the seed.
    func testCutsKeepTheirBoundsAndRepeat() {
        var plan = InfillingEvaluation.Plan()
        (plan.passages, plan.gaps, plan.minimumContext, plan.seed) = (20, 3...5, 2, 7)
        let passages = (0..<40).map { i in Array(0..<(i % 4 == 0 ? 6 : 20)) }  // every fourth too short for most gaps
        func cuts() -> [InfillingEvaluation.Cut] {
            InfillingEvaluation.Plan.cut(passages, plan)
        }
        let first = cuts()
        XCTAssertEqual(first.count, 20)
        XCTAssertEqual(first, cuts())
        for cut in first {
            XCTAssertGreaterThanOrEqual(cut.prefix.count, 2)
            XCTAssertGreaterThanOrEqual(cut.suffix.count, 2)
            XCTAssertTrue((3...5).contains(cut.middle.count))
            XCTAssertEqual(cut.prefix + cut.middle + cut.suffix, Array(0..<(cut.prefix.count + cut.middle.count + cut.suffix.count)))
        }
    }

    /// Every row on the toy system: the true middles score 1, the rows keep their order, and with candidates the LM
    /// alone's chosen continuations join them; the same plan gives the same rows.
    func testRowsOfTheToySystem() throws {
        let (system, tokenizer, _) = GenerationEvaluationTests.toySystem()
        var plan = InfillingEvaluation.Plan()
        (plan.passages, plan.gaps, plan.minimumContext, plan.candidates) = (3, 3...4, 4, 2)
        plan.loop = GenerationRequest(steps: 2)
        let evaluation = InfillingEvaluation(system: system, tokenizer: tokenizer, judge: nil, plan: plan)
        let passages: [[Int]] = try GenerationEvaluationTests.documents.prefix(3).map { try tokenizer.encode(String($0.prefix(24))) }
        let cuts = evaluation.cuts(of: passages)
        XCTAssertEqual(cuts.count, 3)
        let rows = try evaluation.run(cuts)
        XCTAssertEqual(
            rows.map(\.name),
            ["true middle", "loop", "LM alone (prefix only)", "LM alone, best of 2 by likelihood", "parallel decoder, gap zeroed"])
        XCTAssertEqual(rows[0].tokenF1, 1)
        XCTAssertEqual(rows[0].rougeL, 1)
        for row in rows {
            XCTAssertTrue((0...1).contains(row.tokenF1) && (0...1).contains(row.rougeL), row.name)
            XCTAssertNil(row.judgePerplexity)
            XCTAssertEqual(row.examples.count, 3, row.name)
        }
        XCTAssertEqual(try evaluation.run(cuts).map(\.examples), rows.map(\.examples))
    }
}
