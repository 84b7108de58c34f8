import XCTest
import NebulaDiffusion
@testable import NebulaEval

/// The infilling protocol's cuts and scores.
final class InfillingEvaluationTests: XCTestCase {
    func testTokenF1CountsTheOverlapOfMultisets() {
        XCTAssertEqual(InfillingEvaluation.tokenF1([1, 2, 3], [1, 2, 3]), 1)
        XCTAssertEqual(InfillingEvaluation.tokenF1([4, 5], [1, 2]), 0)
        XCTAssertEqual(InfillingEvaluation.tokenF1([], []), 1)
        // overlap 2 ({1, 1}): precision 2/3, recall 2/4
        XCTAssertEqual(InfillingEvaluation.tokenF1([1, 1, 9], [1, 1, 1, 2]), 2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5), accuracy: 1e-12)
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
}
