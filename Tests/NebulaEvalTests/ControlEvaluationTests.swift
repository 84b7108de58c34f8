import XCTest
import NebulaDiffusion
import NebulaTensor
@testable import NebulaEval

/// The attribute-control protocol's judge: the rule that labelled the classifier's data.
final class ControlEvaluationTests: XCTestCase {
    func testTheDialogueRuleLabelsByQuotes() {
        let rule = AttributeRule.dialogue
        XCTAssertEqual(rule.label(of: "Tom said, \"Let's play!\" and ran off."), "dialogue")
        XCTAssertEqual(rule.label(of: "Sue smiled. \u{201C}Yes,\u{201D} she said."), "dialogue")
        XCTAssertEqual(rule.label(of: "Tom's dog ran to the park. It was fun."), "narration")
        XCTAssertEqual(Set(AttributeRule.allCases.flatMap(\.labels)), ["dialogue", "narration"])
    }

    /// A label the rule cannot judge, or the classifier does not know, is refused before anything runs.
    func testLabelsOutsideTheRuleOrTheClassifierAreRefused() throws {
        var rng = SeededGenerator(seed: 1)
        var config = LatentClassifierConfig()
        (config.labels, config.latents, config.latentWidth, config.hidden, config.timeWidth) = (["dialogue", "other"], 4, 8, 8, 8)
        let classifier = LatentClassifier(config, generator: &rng)
        let (system, tokenizer, _) = GenerationEvaluationTests.toySystem()
        XCTAssertThrowsError(
            try ControlEvaluation(
                system: system, tokenizer: tokenizer, classifier: classifier, label: "other", rule: .dialogue, judges: GenerationJudges(),
                plan: .init())
        ) { XCTAssertTrue($0.localizedDescription.contains("gives the labels"), $0.localizedDescription) }
        config.labels = ["narration", "other"]
        XCTAssertThrowsError(
            try ControlEvaluation(
                system: system, tokenizer: tokenizer, classifier: LatentClassifier(config, generator: &rng), label: "dialogue",
                rule: .dialogue,
                judges: GenerationJudges(), plan: .init())
        ) { XCTAssertTrue($0.localizedDescription.contains("unknown label \"dialogue\""), $0.localizedDescription) }
    }

    /// Every row on an untrained toy system: the human row, a loop row per scale, the LM alone unprompted and prompted;
    /// the same seed gives the same passages.
    func testEveryRowRunsAndRepeats() throws {
        var rng = SeededGenerator(seed: 2)
        var config = LatentClassifierConfig()
        (config.labels, config.latents, config.latentWidth, config.hidden, config.timeWidth) = (["dialogue", "narration"], 4, 8, 8, 8)
        let classifier = LatentClassifier(config, generator: &rng)
        classifier.freeze()
        let (system, tokenizer, _) = GenerationEvaluationTests.toySystem()
        var plan = ControlEvaluation.Plan()
        (plan.samples, plan.scales, plan.loop) = (4, [0, 2], GenerationRequest(steps: 2))
        let evaluation = try ControlEvaluation(
            system: system, tokenizer: tokenizer, classifier: classifier, label: "narration", rule: .dialogue, judges: GenerationJudges(),
            plan: plan)
        let heldOut = try GenerationEvaluationTests.documents.suffix(6).map { try tokenizer.encode(String($0.prefix(20))) }
        let rows = try evaluation.run(heldOut: heldOut)
        XCTAssertEqual(
            rows.map(\.name),
            ["human (held-out)", "loop, scale 0.0", "loop, scale 2.0", "LM alone", "LM alone, narration first sentence"])
        XCTAssertEqual(rows[0].success, 1, "the toy stories hold no dialogue")
        XCTAssertEqual(rows.map(\.scale), [nil, 0, 2, nil, nil])
        for row in rows {
            XCTAssertTrue((0...1).contains(row.success), row.name)
            XCTAssertNil(row.judgeMAUVE)
            XCTAssertEqual(row.classifierProbability != nil, row.scale != nil, row.name)
        }
        XCTAssertEqual(try evaluation.run(heldOut: heldOut).map(\.examples), rows.map(\.examples))
    }
}
