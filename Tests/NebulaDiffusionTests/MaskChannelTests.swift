import Foundation
import XCTest
import NebulaCore
import NebulaModels
import NebulaNN
import NebulaTensor
@testable import NebulaDiffusion

/// A denoiser with a mask channel (`knownLatents`): grown from one without it, trained on random known spans and
/// scored on the others, and fed the held vectors by the loop.
final class MaskChannelTests: XCTestCase {
    func tinyConfig(knownLatents: Bool) -> LatentDiffusionConfig {
        var config = LatentDiffusionConfig()
        (config.network.latents, config.network.latentWidth, config.network.width) = (4, 8, 32)
        (config.network.layers, config.network.heads, config.network.selfConditioning) = (2, 2, false)
        config.network.knownLatents = knownLatents
        config.schedule = NoiseSchedule(scale: 0.5)
        config.emaDecay = 0.9  // evaluations read the average: short runs want a short one
        return config
    }

    /// A denoiser given a mask channel starts as the folder it grew from (an exported folder: only the average),
    /// whatever the channel reads; configs written before the channel existed have none.
    func testGrownDenoiserStartsAsItsSource() throws {
        var rng = SeededGenerator(seed: 1)
        let source = Denoiser(tinyConfig(knownLatents: false).network, generator: &rng)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-grow-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try source.save(safetensors: folder.appendingPathComponent(ModelFolder.weights))

        let config = tinyConfig(knownLatents: true)
        let grown = Denoiser(config.network, generator: &rng)
        let latents = Tensor.randn([8, 4, 8], generator: &rng)
        let task = DiffusionTask(
            config: config, denoiser: grown, latents: latents, previous: [Int?](repeating: nil, count: 8), validation: nil)
        try task.restore(from: folder)
        let z = Tensor.randn([2, 4, 8], generator: &rng)
        let known = Denoiser.knownInput(latents: latents.rows([0, 1]), known: [[true, false, false, true], [false, true, true, true]])
        let expected = source(z, times: [0.3, 0.8]).data
        XCTAssertEqual(grown(z, times: [0.3, 0.8], known: known).data, expected)
        XCTAssertEqual(grown(z, times: [0.3, 0.8]).data, expected)

        let old = try JSONDecoder().decode(LatentDiffusionConfig.self, from: Data(#"{"network": {"latents": 4, "width": 32}}"#.utf8))
        XCTAssertFalse(old.network.knownLatents)
        XCTAssertEqual(old.network.width, 32)
        XCTAssertEqual(old.knownLatentsRate, 0.5)
        XCTAssertEqual(Denoiser(old.network, generator: &rng).knownProjection == nil, true)
    }

    /// The mask channel holds each known vector's latent and a 1; a training span is one run of 1 to K − 1
    /// unknown vectors, of every length and at every place.
    func testKnownInputAndSpans() {
        let latents = Tensor(shape: [1, 2, 2], data: [1, 2, 3, 4])
        XCTAssertEqual(Denoiser.knownInput(latents: latents, known: [[false, true]]).data, [0, 0, 0, 3, 4, 1])
        var rng = SeededGenerator(seed: 5)
        var seen = Set<[Bool]>()
        for _ in 0..<3000 {
            let known = DiffusionTask.knownSpan(latents: 6, generator: &rng)
            let unknown = known.indices.filter { !known[$0] }
            XCTAssertTrue((1...5).contains(unknown.count))
            XCTAssertEqual(unknown.last! - unknown.first! + 1, unknown.count, "one run: \(known)")
            seen.insert(known)
        }
        XCTAssertEqual(seen.count, 20, "every run of 1 to 5 of 6 vectors")  // 6 + 5 + 4 + 3 + 2
    }

    /// A row with known vectors is scored on the others only; a row with none, on all.
    func testLossScoresOnlyTheVectorsToDenoise() {
        let config = tinyConfig(knownLatents: true)
        var rng = SeededGenerator(seed: 2)
        let denoiser = Denoiser(config.network, generator: &rng)
        for (_, p) in denoiser.namedParameters() { p.assign(p.data.map { _ in rng.nextGaussian() * 0.05 }) }
        let x0 = Tensor.randn([2, 4, 8], generator: &rng)
        let noise = Tensor.randn([2, 4, 8], generator: &rng)
        let task = DiffusionTask(config: config, denoiser: denoiser, latents: x0, previous: [nil, nil], validation: nil)
        let times: [Float] = [0.4, 0.7]
        let masks = [[true, false, false, true], [false, false, false, false]]
        let loss = task.denoisingLoss(
            x0: x0, noise: noise, times: times, context: nil, drop: nil, known: [masks[0], nil], model: denoiser, selfCondition: false
        ).item

        let (alpha, sigma) = config.schedule.alphaSigma(times: times, rank: 3)
        let output = denoiser(x0 * alpha + noise * sigma, times: times, known: Denoiser.knownInput(latents: x0, known: masks)).data
        let target = config.objective.target(x0: x0, noise: noise, alpha: alpha, sigma: sigma).data
        var (sum, count): (Float, Float) = (0, 0)
        for row in 0..<2 {
            for j in 0..<4 where !masks[row][j] {
                for e in 0..<8 {
                    let i = (row * 4 + j) * 8 + e
                    sum += (output[i] - target[i]) * (output[i] - target[i])
                    count += 1
                }
            }
        }
        XCTAssertEqual(loss, sum / count, accuracy: 1e-5 * max(1, sum / count))
        XCTAssertEqual(count, 6 * 8)
    }

    /// Latents of a few patterns, each vector of which tells the pattern: a denoiser that reads the known vectors
    /// clean learns the span far better than one that sees them only noised, and the loop hands them over.
    func testMaskChannelLearnsTheSpanFromTheKnownVectors() throws {
        var rng = SeededGenerator(seed: 7)
        let patterns = Tensor.randn([8, 4, 8], generator: &rng)
        let latents = Tensor.concatenate(
            (0..<256).map { patterns.rows([$0 % 8]) + Tensor.randn([1, 4, 8], std: 0.05, generator: &rng) }, axis: 0)
        var losses: [Bool: Double] = [:]
        var models: [Bool: Denoiser] = [:]
        for knownLatents in [false, true] {
            var seeded = SeededGenerator(seed: 11)
            let config = tinyConfig(knownLatents: knownLatents)
            let denoiser = Denoiser(config.network, generator: &seeded)
            let task = DiffusionTask(
                config: config, denoiser: denoiser, latents: latents, previous: [Int?](repeating: nil, count: 256),
                validation: latents)
            let summary = try quietTrainer(task, steps: 800, learningRate: 3e-3, batchSize: 32, evalBatches: 4).run()
            losses[knownLatents] = summary.evaluation["val_loss_infill"]
            models[knownLatents] = denoiser
        }
        XCTAssertLessThan(losses[true]!, losses[false]! / 2, "span loss with the channel \(losses[true]!), without \(losses[false]!)")

        // The loop's rows carry their held vectors to the denoiser (and a denoiser without the channel ignores them).
        let system = LatentDiffusion(
            config: tinyConfig(knownLatents: true), denoiser: models[true]!, autoencoder: InfillingTests.tinySystem().autoencoder)
        let z = Tensor.randn([2, 4, 8], generator: &rng)
        let known = KnownLatents(latents: latents.rows([0, 1]), known: [true, true, false, false])
        let held = system.modelOutputs([DenoisingRows(z: z, time: 0.9, previousX0: nil, condition: nil, guidance: 1, known: known)])[0]
        let free = system.modelOutputs([DenoisingRows(z: z, time: 0.9, previousX0: nil, condition: nil, guidance: 1)])[0]
        XCTAssertNotEqual(held.data, free.data)
        let direct = models[true]!(z, times: [0.9, 0.9], known: known.denoiserInput)
        XCTAssertEqual(held.data, direct.data)
    }
}
