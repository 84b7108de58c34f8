import XCTest
import NebulaModels
import NebulaTensor
@testable import NebulaDiffusion

/// Infilling: the masked loop holds known latent vectors, resampling re-noises by the forward process, the decoder
/// keeps a forced prefix, and the middle is cut where the decoder arrives at the suffix.
final class InfillingTests: XCTestCase {
    /// The tiny untrained system of every infilling test (``tinyDiffusionSystem(vocabulary:generator:)``, seed 3).
    static func tinySystem() -> LatentDiffusion {
        var rng = SeededGenerator(seed: 3)
        return tinyDiffusionSystem(generator: &rng)
    }

    /// Known vectors come back exactly; the unknown ones are generated; with nothing known the loop takes exactly
    /// the unmasked loop's steps (the same draws, the same latents).
    func testKnownVectorsComeBackExactlyAndNothingKnownChangesNothing() throws {
        let system = Self.tinySystem()
        let config = try system.configuration(for: GenerationRequest(steps: 6))
        var rng = SeededGenerator(seed: 9)
        let z0 = Tensor.randn([2, 4, 8], generator: &rng)
        let mask = [true, false, false, true]
        for resample in [1, 3] {
            var generator = SeededGenerator(seed: 1)
            let z = system.sample(
                count: 2, config, known: KnownLatents(latents: z0, known: mask, resample: resample), generator: &generator)
            for b in 0..<2 {
                for j in 0..<4 {
                    let row = Array(z.data[((b * 4 + j) * 8)..<((b * 4 + j + 1) * 8)])
                    let known = Array(z0.data[((b * 4 + j) * 8)..<((b * 4 + j + 1) * 8)])
                    if mask[j] {
                        XCTAssertEqual(row, known, "resample \(resample): vector \(j) of row \(b) held")
                    } else {
                        XCTAssertNotEqual(row, known, "resample \(resample): vector \(j) of row \(b) generated")
                    }
                }
            }
        }
        var (plain, masked) = (SeededGenerator(seed: 4), SeededGenerator(seed: 4))
        let unmasked = system.sample(count: 2, config, generator: &plain)
        let nothingKnown = system.sample(
            count: 2, config, known: KnownLatents(latents: z0, known: [false, false, false, false]), generator: &masked)
        XCTAssertEqual(unmasked.data, nothingKnown.data)
    }

    /// Re-noising from s to t is the forward process: mean (α_t/α_s)·z_s, variance σ_t² − (α_t/α_s)²·σ_s².
    func testRenoisingFollowsTheForwardProcess() {
        let schedule = NoiseSchedule()
        var rng = SeededGenerator(seed: 2)
        let (s, t): (Float, Float) = (0.3, 0.6)
        let z = Tensor(shape: [200_000], data: [Float](repeating: 1.5, count: 200_000))
        let out = schedule.renoised(z, from: s, to: t, generator: &rng).data
        let ratio = schedule.alpha(Double(t)) / schedule.alpha(Double(s))
        let variance = pow(schedule.sigma(Double(t)), 2) - ratio * ratio * pow(schedule.sigma(Double(s)), 2)
        let mean = out.map(Double.init).reduce(0, +) / Double(out.count)
        let measured = out.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(out.count)
        XCTAssertEqual(mean, 1.5 * ratio, accuracy: 0.01)
        XCTAssertEqual(measured, variance, accuracy: 0.01 * max(variance, 0.01))
        XCTAssertEqual(schedule.renoised(z, from: s, to: s, generator: &rng).data, z.data, "no time, no noise")
    }

    /// Held vectors are those wholly inside the prefix or wholly at or after the gap's end.
    func testKnownVectorsOfAPrefixAndAGap() {
        let system = Self.tinySystem()  // 4 vectors of 2 tokens
        XCTAssertEqual(system.knownVectors(prefix: 2, gap: 2), [true, false, true, true])
        XCTAssertEqual(system.knownVectors(prefix: 3, gap: 2), [true, false, false, true])
        XCTAssertEqual(system.knownVectors(prefix: 0, gap: 8), [false, false, false, false])
    }

    /// The decoder writes the forced prefix and stops at `maxTokens`; an infill that does not fit is refused.
    func testForcedPrefixAndLimitsAndTheRefusedInfill() throws {
        let system = Self.tinySystem()
        var rng = SeededGenerator(seed: 5)
        let z = Tensor.randn([3, 4, 8], generator: &rng)
        for decoder in AutoencoderConfig.Decoder.allCases {
            let prefixes = [[3, 4], [5], [6, 7, 8]]
            let passages = system.autoencoder.decode(z, decoder: decoder, prefixes: prefixes, maxTokens: 5, generator: &rng)
            for (passage, prefix) in zip(passages, prefixes) {
                XCTAssertEqual(Array(passage.prefix(prefix.count)), prefix, "\(decoder)")
                XCTAssertLessThanOrEqual(passage.count, 5, "\(decoder)")
            }
        }
        let config = try system.configuration(for: GenerationRequest(steps: 2))
        XCTAssertThrowsError(try system.infill(prefix: [1, 2, 3], suffix: [4, 5, 6], gap: 3, count: 1, config, generator: &rng)) {
            XCTAssertEqual(
                ($0 as? InfillError)?.errorDescription, "prefix (3 tokens) + gap (3) + suffix (3) is longer than a passage (8 tokens)")
        }
        let filled = try system.infill(prefix: [1, 2], suffix: [4], gap: 3, count: 2, config, generator: &rng)
        XCTAssertEqual(filled.count, 2)
        for infill in filled { XCTAssertEqual(infill.passage, [1, 2] + infill.middle + [4]) }
    }

    /// The middle ends where the decoder reaches the suffix's first two tokens nearest the asked length, else after
    /// `gap` tokens.
    func testTheMiddleEndsWhereTheDecoderReachesTheSuffix() {
        let prefix = [1, 2]
        XCTAssertEqual(LatentDiffusion.middle(of: prefix + [7, 8, 9, 4, 5, 6], prefix: 2, gap: 4, suffix: [4, 5, 6]), [7, 8, 9])
        XCTAssertEqual(LatentDiffusion.middle(of: prefix + [7, 8, 9, 10, 11, 4, 5], prefix: 2, gap: 4, suffix: [4, 5]), [7, 8, 9, 10, 11])
        XCTAssertEqual(LatentDiffusion.middle(of: prefix + [7, 8, 9, 10, 11, 12], prefix: 2, gap: 4, suffix: [4, 5]), [7, 8, 9, 10])
        XCTAssertEqual(LatentDiffusion.middle(of: prefix + [7], prefix: 2, gap: 4, suffix: [4, 5]), [7])
    }

    /// Gaps of different places and lengths fill in one loop, each row holding its own known vectors, each infill
    /// framed by its own prefix and suffix.
    func testGapsOfDifferentShapesFillTogether() throws {
        let system = Self.tinySystem()
        let config = try system.configuration(for: GenerationRequest(steps: 3))
        let gaps = [
            LatentDiffusion.Gap(prefix: [1, 2], suffix: [4], length: 3), LatentDiffusion.Gap(prefix: [5], suffix: [6, 7], length: 2),
            LatentDiffusion.Gap(prefix: [1, 2], suffix: [4], length: 3)
        ]
        var rng = SeededGenerator(seed: 8)
        var seen: [[Bool]] = []
        let filled = try system.infill(gaps, config, candidates: 2, generator: &rng)
        XCTAssertEqual(filled.count, 3)
        for (infill, gap) in zip(filled, gaps) { XCTAssertEqual(infill.passage, gap.prefix + infill.middle + gap.suffix) }
        let known = KnownLatents(latents: Tensor.zeros([2, 4, 8]), rows: [[true, false, false, true], [false, false, true, true]])
        var noise = SeededGenerator(seed: 1)
        let imposed = known.imposed(on: Tensor.ones([2, 4, 8]), time: 0, schedule: .cosine, generator: &noise).data
        for row in 0..<2 {
            seen.append((0..<4).map { j in imposed[(row * 4 + j) * 8] == 0 })
        }
        XCTAssertEqual(seen, known.known, "each row's own vectors are held")
    }

    /// Of several candidates, consensus keeps the middle that shares most tokens with the others (token F1 counts
    /// repeats once each), likelihood the passage the frozen LM finds most likely.
    func testCandidatesAreKeptByConsensusOrLikelihood() {
        XCTAssertEqual(InfillSelection.tokenF1([1, 2, 2, 3], [2, 2, 2, 4]), 0.5)  // two 2s shared of 4 + 4
        XCTAssertEqual(InfillSelection.tokenF1([], []), 1)
        XCTAssertEqual(InfillSelection.tokenF1([1], []), 0)
        let group = [[9, 9, 9], [1, 2, 3], [1, 2, 4], [5, 2, 3]].map { Infill(middle: $0, passage: [0] + $0) }
        XCTAssertEqual(InfillSelection.consensus.pick(group) { _ in 0 }, 1)
        XCTAssertEqual(InfillSelection.likelihood.pick(group) { Float($0.reduce(0, +)) }, 1)  // the smallest loss
        XCTAssertEqual(InfillSelection.likelihood.pick(group) { $0.contains(9) ? 0 : 1 }, 0)
    }
}
