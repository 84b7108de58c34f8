import Foundation
import NebulaModels
import NebulaTensor
import XCTest

/// `sampleToken`: greedy, plain, top-k and nucleus draws — the distribution each promises, and the same
/// nucleus as sorting the whole vocabulary.
final class SamplingTests: XCTestCase {
    /// log-probabilities of [0.5, 0.3, 0.15, 0.05].
    let logits: [Float] = [0.5, 0.3, 0.15, 0.05].map { Foundation.log($0) }

    /// Greedy picks the first of the largest logits, at every length (the eight-lane part and the tail), in a
    /// slice that starts anywhere.
    func testArgmaxIsTheFirstLargest() {
        var rng = SeededGenerator(seed: 3)
        for n in 1...40 {
            let values = (0..<(n + 5)).map { _ in Float(rng.nextInt(below: 6)) }  // many ties
            let slice = values[5...]
            let expected = slice.indices.first { slice[$0] == slice.max()! }! - 5
            XCTAssertEqual(argmax(slice), expected, "n = \(n)")
            XCTAssertEqual(sampleToken(slice, SamplingOptions(temperature: 0), generator: &rng), expected)
        }
    }

    func frequencies(_ options: SamplingOptions, draws: Int = 20000, seed: UInt64 = 3) -> [Double] {
        var generator = SeededGenerator(seed: seed)
        var counts = [Double](repeating: 0, count: logits.count)
        for _ in 0..<draws { counts[sampleToken(logits[...], options, generator: &generator)] += 1 }
        return counts.map { $0 / Double(draws) }
    }

    func assertClose(_ measured: [Double], _ expected: [Double], file: StaticString = #filePath, line: UInt = #line) {
        for (m, e) in zip(measured, expected) {
            XCTAssertEqual(m, e, accuracy: 0.015, "\(measured) vs \(expected)", file: file, line: line)
        }
    }

    func testGreedyTakesTheLargestLogit() {
        var generator = SeededGenerator(seed: 0)
        XCTAssertEqual(sampleToken([1, 5, 3, 5][...], SamplingOptions(temperature: 0), generator: &generator), 1)
    }

    func testEachTruncationDrawsItsDistribution() {
        assertClose(frequencies(SamplingOptions()), [0.5, 0.3, 0.15, 0.05])
        assertClose(frequencies(SamplingOptions(topK: 2)), [0.625, 0.375, 0, 0])
        assertClose(frequencies(SamplingOptions(topP: 0.8)), [0.625, 0.375, 0, 0])  // 0.5 + 0.3 reaches 0.8
        assertClose(frequencies(SamplingOptions(topP: 0.81)), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])
        assertClose(frequencies(SamplingOptions(topK: 3, topP: 0.8)), [0.5 / 0.8, 0.3 / 0.8, 0, 0])  // within the top 3
        // Temperature 0.5 squares the probabilities before normalising.
        let squared = [0.25, 0.09, 0.0225, 0.0025], sum = squared.reduce(0, +)
        assertClose(frequencies(SamplingOptions(temperature: 0.5)), squared.map { $0 / sum })
    }

    /// The threshold search keeps exactly the tokens a full sort of GPT-2's vocabulary keeps.
    func testNucleusOfAWholeVocabularyMatchesAFullSort() {
        var random = SeededGenerator(seed: 11)
        for (spread, topP, topK) in [(Float(1), Float(0.9), 0), (4, 0.95, 0), (8, 0.5, 0), (2, 1, 40), (6, 0.9, 200)] {
            let logits = (0..<50_257).map { _ in spread * random.nextGaussian() }
            let options = SamplingOptions(temperature: 0.9, topK: topK, topP: topP)
            var generator = SeededGenerator(seed: 5)
            let drawn = Set((0..<600).map { _ in sampleToken(logits[...], options, generator: &generator) })
            let kept = Set(fullSortNucleus(logits, options))
            XCTAssertTrue(drawn.isSubset(of: kept), "spread \(spread), top-p \(topP), top-k \(topK): drew outside the nucleus")
            if kept.count <= 10 { XCTAssertEqual(drawn, kept, "spread \(spread), top-p \(topP), top-k \(topK)") }
        }
    }

    func testTheSameSeedDrawsTheSameTokens() {
        func tokens() -> [Int] {
            var generator = SeededGenerator(seed: 42)
            return (0..<50).map { _ in sampleToken(logits[...], SamplingOptions(topP: 0.9), generator: &generator) }
        }
        XCTAssertEqual(tokens(), tokens())
    }

    /// The tokens top-k then top-p keep, by sorting every token (the definition).
    func fullSortNucleus(_ logits: [Float], _ options: SamplingOptions) -> [Int] {
        let scaled = logits.map { Double($0 / options.temperature) }
        var order = Array(scaled.indices).sorted { scaled[$0] > scaled[$1] }
        if options.topK > 0 { order = Array(order.prefix(options.topK)) }
        let m = scaled[order[0]]
        let weights = order.map { Foundation.exp(scaled[$0] - m) }
        let total = weights.reduce(0, +)
        var cumulative = 0.0, keep = 0
        while keep < order.count { cumulative += weights[keep] / total; keep += 1; if cumulative >= Double(options.topP) { break } }
        return Array(order.prefix(keep))
    }
}
