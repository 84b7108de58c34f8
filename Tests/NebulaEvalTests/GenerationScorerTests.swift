import Foundation
import XCTest
import NebulaModels
import NebulaTensor
import NebulaText
@testable import NebulaEval

final class GenerationScorerTests: XCTestCase {
    let corpus = ["the cat sat on the mat", "a dog ran in the park", "the bird sang in the tree", "my cat ate the fish"]

    func makeModel() -> (GPT, CharTokenizer) {
        let tokenizer = CharTokenizer(corpus: corpus.joined(separator: " "), specialTokens: ["<|endoftext|>"])
        var rng = SeededGenerator(seed: 3)
        let model = GPT(GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 32, layers: 1, heads: 2, width: 16), generator: &rng)
        return (model, tokenizer)
    }

    /// The scorer's perplexity is exp of the model's own mean cross-entropy over the texts' tokens, each
    /// text read after `<|endoftext|>`, with texts of different lengths batched together.
    func testPerplexityMatchesTheModelsLoss() throws {
        let (model, tokenizer) = makeModel()
        let texts = ["the cat sat", "a dog ran in the park"]
        var nll = 0.0, count = 0
        for text in texts {
            let ids = [Int32(tokenizer.endOfTextID!)] + (try tokenizer.encode(text, allowedSpecial: .none)).map(Int32.init)
            let loss = withNoGrad {
                model.loss(Array(ids.dropLast()), targets: Array(ids.dropFirst()), batch: 1, length: ids.count - 1).item
            }
            nll += Double(loss) * Double(ids.count - 1)
            count += ids.count - 1
        }
        let expected = exp(nll / Double(count))
        XCTAssertEqual(try GenerationScorer.perplexity(of: texts, model: model, tokenizer: tokenizer), expected, accuracy: expected * 1e-5)
    }

    /// Features do not depend on what shares the batch, and a text's own tokens are what count.
    func testFeaturesAreIndependentOfBatching() throws {
        let (model, tokenizer) = makeModel()
        let alone = try GenerationScorer.read(["the cat sat"], model: model, tokenizer: tokenizer).features[0]
        let batched = try GenerationScorer.read(["a dog ran in the park", "the cat sat"], model: model, tokenizer: tokenizer).features
        for (a, b) in zip(alone, batched[1]) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertNotEqual(batched[0], batched[1])
    }

    /// Scoring the training corpus itself: every 4-gram is memorized, the words are counted, and MAUVE of
    /// a set against itself is 1.
    func testScoresOfTheReferenceItself() throws {
        let (model, tokenizer) = makeModel()
        var options = MAUVE.Options()
        options.clusters = 2
        let scorer = try GenerationScorer(
            model: model, tokenizer: tokenizer, reference: corpus, trainingDocuments: corpus, mauveOptions: options)
        let scores = try scorer.score(corpus)
        XCTAssertEqual(scores.memorization, 1)
        XCTAssertEqual(scores.meanWords, 23.0 / 4)  // 6 + 6 + 6 + 5 words
        XCTAssertEqual(scores.mauve, 1, accuracy: 1e-9)
        XCTAssertEqual(scores.distinct1, Diversity.distinct(1, in: corpus))
        XCTAssertEqual(scores.value("memorization"), 1)
        XCTAssertTrue(scores.value("nonsense").isNaN)
    }

    /// A row's mean and sample standard deviation over seeds, by hand.
    func testRowAveragesOverSeeds() {
        func scores(_ mauve: Double) -> GenerationScores {
            GenerationScores(
                mauve: mauve, perplexity: 10, diversity: 0.5, distinct1: 0.1, distinct2: 0.2, uniqueOpenings: 1, memorization: 0.3,
                meanWords: 40)
        }
        let row = GenerationResults.Row(name: "x", parameters: 5, runs: [(scores(0.2), 1), (scores(0.4), 3)], samples: 10, examples: [])
        XCTAssertEqual(row.mean["mauve"]!, 0.3, accuracy: 1e-12)
        XCTAssertEqual(row.std["mauve"]!, (0.02 as Double).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(row.std["perplexity"], 0)
        XCTAssertEqual(row.secondsPerSample, 2)
        XCTAssertEqual(row.seeds, 2)
        XCTAssertNil(row.mean[GenerationResults.Row.latentDistance], "a row without latents has no latent distance")
        let decoded = GenerationResults.Row(
            name: "y", parameters: 5, runs: [(scores(0.2), 1), (scores(0.4), 3)], samples: 10, examples: [],
            latentDistances: [100, 140])
        XCTAssertEqual(decoded.mean[GenerationResults.Row.latentDistance], 120)
        XCTAssertEqual(decoded.std[GenerationResults.Row.latentDistance]!, (800 as Double).squareRoot(), accuracy: 1e-9)
    }

    /// The judges score beside the frozen LM: the judge LM's perplexity is the plain perplexity under that model,
    /// MAUVE on the sentence encoder's features of the reference against itself is 1, and rows carry the judged
    /// figures (mean ± std over seeds) only when a judge scored them; the report puts them first.
    func testJudgesScoreBesideTheFrozenLM() throws {
        let (model, tokenizer) = makeModel()
        var rng = SeededGenerator(seed: 99)
        let judgeLM = GPT(
            GPTConfig(vocabSize: tokenizer.vocabularySize, contextLength: 32, layers: 1, heads: 2, width: 24), generator: &rng)
        let encoder = try makeSentenceEncoder()
        var options = MAUVE.Options()
        options.clusters = 2
        let scorer = try GenerationScorer(
            model: model, tokenizer: tokenizer, reference: corpus, trainingDocuments: corpus, mauveOptions: options,
            judges: GenerationJudges(sentenceEncoder: encoder, languageModel: (judgeLM, tokenizer)))
        let texts = ["the cat sat on the mat", "a bird ran in the tree", "my dog ate the fish"]
        let scores = try scorer.score(texts)
        let judgePerplexity = try GenerationScorer.perplexity(of: texts, model: judgeLM, tokenizer: tokenizer)
        XCTAssertEqual(scores.judgePerplexity!, judgePerplexity, accuracy: 1e-9)
        XCTAssertNotEqual(scores.judgePerplexity!, scores.perplexity, accuracy: 1e-3, "a different model judges")
        XCTAssertEqual(try scorer.score(corpus).judgeMAUVE!, 1, accuracy: 1e-9)
        XCTAssertEqual(scores.value("judge_perplexity"), scores.judgePerplexity)

        let judged = GenerationResults.Row(name: "judged", parameters: 1, runs: [(scores, 1), (scores, 1)], samples: 3, examples: [])
        XCTAssertEqual(judged.mean["judge_perplexity"]!, judgePerplexity, accuracy: 1e-9)
        XCTAssertEqual(judged.std["judge_mauve"], 0)
        let plain = try GenerationScorer(
            model: model, tokenizer: tokenizer, reference: corpus, trainingDocuments: corpus, mauveOptions: options
        ).score(texts)
        XCTAssertNil(plain.judgeMAUVE)
        XCTAssertNil(GenerationResults.Row(name: "plain", parameters: 1, runs: [(plain, 1)], samples: 3, examples: []).mean["judge_mauve"])

        var results = GenerationResults(command: "nebula eval generation", date: "today", referencePassages: 4, sampler: "ddpm")
        results.rows = [judged]
        results.continuation = [
            .init(system: "diffusion", guidance: 1, steps: 5, rougeL: 0.2, mauve: 0.3, judgeMAUVE: 0.4, secondsPerSample: 0.1)
        ]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try GenerationReport(results: results, stages: []).write(to: folder)
        let markdown = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(
            markdown.contains("| system | parameters | samples × seeds | MAUVE (judge) ↑ | perplexity (judge LM) | MAUVE (LM features) |"))
        XCTAssertTrue(
            markdown.contains(
                String(format: "| judged | 0.00M | 3 × 2 | %.3f ± 0.000 | %.3f ± 0.000 |", scores.judgeMAUVE!, judgePerplexity)))
        XCTAssertTrue(markdown.contains("| ROUGE-L ↑ | MAUVE (judge) ↑ | MAUVE (LM features) |"))
        XCTAssertTrue(markdown.contains("| diffusion | 1.0 | 5 | 0.200 | 0.400 | 0.300 | 0.100 |"))
    }

    /// A random sentence encoder over the corpus's words (a WordPiece file written here).
    func makeSentenceEncoder() throws -> SentenceEncoder {
        let words = Set(corpus.flatMap { $0.split(separator: " ").map(String.init) }).sorted()
        let pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words
        let vocab = Dictionary(uniqueKeysWithValues: pieces.enumerated().map { ($1, $0) })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wordpiece-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try JSONSerialization.data(withJSONObject: ["model": ["type": "WordPiece", "vocab": vocab, "unk_token": "[UNK]"]]).write(to: file)
        var rng = SeededGenerator(seed: 5)
        let bert = BERT(BERTConfig(vocabSize: pieces.count, width: 16, layers: 1, heads: 2, mlpWidth: 32, positions: 16), generator: &rng)
        return SentenceEncoder(model: bert, tokenizer: try WordPieceTokenizer(huggingFaceFile: file))
    }

    /// The report names every row and sweep point, and writes the plots it links.
    func testReportWritesTablesAndPlots() throws {
        let scores = GenerationScores(
            mauve: 0.5, perplexity: 12, diversity: 0.4, distinct1: 0.1, distinct2: 0.3, uniqueOpenings: 0.9, memorization: 0.6,
            meanWords: 45)
        var results = GenerationResults(command: "nebula eval generation", date: "today", referencePassages: 10, sampler: "ddpm")
        results.rows = [
            .init(name: "human (held-out)", parameters: 0, runs: [(scores, 0)], samples: 10, examples: ["Once upon a time."]),
            .init(
                name: "diffusion (5 ddpm steps)", parameters: 9_000_000, runs: [(scores, 0.1), (scores, 0.2)], samples: 10,
                examples: ["A cat."],
                latentDistances: [300, 302])
        ]
        results.stepsSweep = [
            .init(steps: 5, scores: scores, secondsPerSample: 0.05, example: "one | two"),
            .init(steps: 50, scores: scores, secondsPerSample: 0.3, example: "three")
        ]
        results.continuation = [
            .init(system: "diffusion", guidance: 1, steps: 5, rougeL: 0.2, mauve: 0.3, secondsPerSample: 0.1),
            .init(system: "diffusion", guidance: 2, steps: 5, rougeL: 0.25, mauve: 0.3, secondsPerSample: 0.1)
        ]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try GenerationReport(results: results, stages: [], findings: "The loop does not pay yet.\n").write(to: folder)
        let markdown = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Findings\n\nThe loop does not pay yet.\n\n## Systems"))
        XCTAssertTrue(markdown.contains("| diffusion (5 ddpm steps) | 9.00M | 10 × 2 | 0.500 ± 0.000 |"))
        XCTAssertTrue(markdown.contains("| words | latent FD ↓ | s / sample |"))
        XCTAssertTrue(markdown.contains("| 45.000 | – | – |"), "the human row has no latents here: a dash, not a number")
        XCTAssertTrue(markdown.contains("| 45.000 ± 0.000 | 301.000 ± 1.414 | 0.150 |"))
        XCTAssertTrue(markdown.contains("| 50 | 0.500 | 12.000 |"))
        XCTAssertFalse(markdown.contains("MAUVE (judge)") || markdown.contains("The judges are"), "no judge columns when no judge scored")
        XCTAssertTrue(markdown.contains("one \\| two"), "a pipe inside a sample must not break the table")
        for link in ["mauve_vs_steps.svg", "perplexity_vs_time.svg", "continuation_rouge_vs_guidance.svg"] {
            XCTAssertTrue(markdown.contains("(\(link))"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(link).path), link)
        }
    }
}
