import XCTest
import NebulaModels
import NebulaTensor
@testable import NebulaDiffusion

/// Attribute control: the latent classifier's gradient, what guidance does to a step's noise estimate, training
/// on noised latents, steering a loop, and the refusals.
final class ClassifierGuidanceTests: XCTestCase {
    func smallConfig() -> LatentClassifierConfig {
        var config = LatentClassifierConfig()
        (config.labels, config.latents, config.latentWidth, config.hidden, config.timeWidth) = (["minus", "plus"], 4, 8, 16, 8)
        return config
    }

    /// log p(label | z) of row `row`, in Double from the logits.
    func logProbability(_ classifier: LatentClassifier, _ z: Tensor, time: Float, label: Int, row: Int) -> Double {
        let logits = withNoGrad { classifier(z, times: [Float](repeating: time, count: z.shape[0])) }.data
        let c = classifier.config.labels.count
        let values = (0..<c).map { Double(logits[row * c + $0]) }
        let top = values.max()!
        return values[label] - top - Foundation.log(values.map { Foundation.exp($0 - top) }.reduce(0, +))
    }

    /// ∇_z log p(label | z) against central differences, coordinate by coordinate, for every row.
    func testGradientMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 5)
        let classifier = LatentClassifier(smallConfig(), generator: &rng)
        classifier.freeze()
        let z = Tensor.randn([2, 4, 8], generator: &rng)
        let gradient = classifier.logProbabilityGradient(z, time: 0.3, label: 1)
        XCTAssertEqual(gradient.shape, [2, 4, 8])
        let h: Float = 1e-2
        for index in stride(from: 0, to: 64, by: 5) {
            var (up, down) = (z.data, z.data)
            up[index] += h
            down[index] -= h
            let row = index / 32
            let numeric =
                (logProbability(classifier, Tensor(shape: z.shape, data: up), time: 0.3, label: 1, row: row)
                    - logProbability(classifier, Tensor(shape: z.shape, data: down), time: 0.3, label: 1, row: row)) / Double(2 * h)
            XCTAssertEqual(Double(gradient.data[index]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "coordinate \(index)")
        }
        XCTAssertTrue(classifier.parameters().allSatisfy { $0.grad == nil }, "a frozen classifier gathers no gradient")
    }

    /// Guidance on the noisy latent moves ε̂ by −scale·σ_t·∇ log p(label | z_t); on the estimate it moves x0̂ by
    /// scale·∇ log p(label | x0̂); both leave z = α·x0̂ + σ·ε̂ intact, for every objective; scale 0 changes nothing.
    func testGuidanceMovesTheNoiseOrTheCleanEstimateAlongTheGradient() throws {
        var rng = SeededGenerator(seed: 6)
        let classifier = LatentClassifier(smallConfig(), generator: &rng)
        classifier.freeze()
        let z = Tensor.randn([3, 4, 8], generator: &rng)
        let output = Tensor.randn([3, 4, 8], generator: &rng)
        let schedule = NoiseSchedule(scale: 0.5)
        let time: Float = 0.4
        let noisyGradient = classifier.logProbabilityGradient(z, time: classifier.classifierTime(time, of: schedule), label: 0)
        let (alpha, sigma) = schedule.alphaSigma(Double(time))
        for objective in Objective.allCases {
            let before = objective.predictions(modelOutput: output.data, sample: z.data, alpha: alpha, sigma: sigma)
            let cleanGradient = classifier.logProbabilityGradient(Tensor(shape: z.shape, data: before.x0), time: 0, label: 0)
            for target in ClassifierGuidance.Target.allCases {
                let steering = try ClassifierGuidance(classifier: classifier, label: "minus", scale: 3, target: target)
                let guided = steering.guided(output, sample: z, time: time, schedule: schedule, objective: objective)
                let after = objective.predictions(modelOutput: guided.data, sample: z.data, alpha: alpha, sigma: sigma)
                for i in 0..<z.count {
                    switch target {
                    case .noisyLatent:
                        XCTAssertEqual(after.epsilon[i] - before.epsilon[i], -3 * Float(sigma) * noisyGradient.data[i], accuracy: 1e-4)
                    case .estimate:
                        XCTAssertEqual(after.x0[i] - before.x0[i], 3 * cleanGradient.data[i], accuracy: 1e-4, "\(objective)")
                    }
                    XCTAssertEqual(Float(alpha) * after.x0[i] + Float(sigma) * after.epsilon[i], z.data[i], accuracy: 1e-4, "\(objective)")
                }
                let unguided = try ClassifierGuidance(classifier: classifier, label: "minus", scale: 0, target: target)
                XCTAssertEqual(unguided.guided(output, sample: z, time: time, schedule: schedule, objective: objective).data, output.data)
            }
        }
        // The classifier's time has the loop's log-SNR on the classifier's own schedule.
        XCTAssertEqual(
            classifier.config.schedule.logSNR(Double(classifier.classifierTime(time, of: schedule))), schedule.logSNR(Double(time)),
            accuracy: 1e-4)
    }

    /// Latents labelled by the sign of their first vector's mean: a classifier trained on them noised at every time
    /// separates them clean and is near chance at pure noise.
    func trainedToyClassifier() throws -> (LatentClassifier, figures: [String: Double]) {
        var rng = SeededGenerator(seed: 7)
        func toy(_ count: Int) -> (Tensor, [Int]) {
            let labels = (0..<count).map { $0 % 2 }
            var values = Tensor.randn([count, 4, 8], generator: &rng).data
            for (row, label) in labels.enumerated() { for j in 0..<8 { values[row * 32 + j] += label == 1 ? 1 : -1 } }
            return (Tensor(shape: [count, 4, 8], data: values), labels)
        }
        let (train, labels) = toy(512)
        let held = toy(128)
        let classifier = LatentClassifier(smallConfig(), generator: &rng)
        let task = ClassifierTask(classifier: classifier, latents: train, labels: labels, validation: held)
        let trainer = quietTrainer(task, steps: 300, learningRate: 3e-3, batchSize: 32, evalBatches: 4)
        let summary = try trainer.run()
        let loaded = try LatentClassifier.load(from: trainer.directory)
        XCTAssertEqual(
            withNoGrad { loaded(held.0, times: [Float](repeating: 0.2, count: 128)) }.data,
            withNoGrad { classifier(held.0, times: [Float](repeating: 0.2, count: 128)) }.data, "the saved classifier reads back the same")
        return (loaded, summary.evaluation)
    }

    func testTrainingOnNoisedLatentsSeparatesCleanOnesAndNotPureNoise() throws {
        let (_, figures) = try trainedToyClassifier()
        XCTAssertGreaterThan(try XCTUnwrap(figures["val_accuracy_t0"]), 0.95)
        XCTAssertGreaterThan(try XCTUnwrap(figures["val_accuracy_t0"]), try XCTUnwrap(figures["val_accuracy_t75"]))
    }

    /// Steering an (untrained) loop towards each label raises the share of final latents the classifier gives it.
    func testSteeringRaisesTheLabelsShareOfSamples() throws {
        let (classifier, _) = try trainedToyClassifier()
        let system = InfillingTests.tinySystem()
        let config = try system.configuration(for: GenerationRequest(steps: 10))
        func share(_ label: Int, scale: Float, target: ClassifierGuidance.Target) throws -> Double {
            var generator = SeededGenerator(seed: 11)
            let steering = try ClassifierGuidance(
                classifier: classifier, label: classifier.config.labels[label], scale: scale, target: target)
            let z = system.sample(count: 64, config, steering: steering, generator: &generator)
            return Double(classifier.probabilities(z).filter { $0[label] > 0.5 }.count) / 64
        }
        for label in 0..<2 {
            for target in ClassifierGuidance.Target.allCases {
                let (unguided, guided) = (try share(label, scale: 0, target: target), try share(label, scale: 20, target: target))
                XCTAssertGreaterThan(guided, unguided + 0.2, "\(target), label \(label): \(unguided) unguided, \(guided) guided")
            }
        }
    }

    /// Best of k: each passage is, of its k loops (the same draws as k·count single loops), the one whose decoded
    /// words the classifier reads as most likely the label.
    func testCandidatesKeepThePassageTheClassifierReadsAsMostLikelyTheLabel() throws {
        var rng = SeededGenerator(seed: 9)
        var config = smallConfig()
        config.labels = ["a", "b", "c"]
        let classifier = LatentClassifier(config, generator: &rng)
        classifier.freeze()
        let system = InfillingTests.tinySystem()
        let loop = try system.configuration(for: GenerationRequest(steps: 3))
        let steering = try ClassifierGuidance(classifier: classifier, label: "b", scale: 2)
        var (single, best) = (SeededGenerator(seed: 5), SeededGenerator(seed: 5))
        let all = system.steeredPassages(count: 6, loop, steering: steering, generator: &single)
        let chosen = system.steeredPassages(count: 2, loop, steering: steering, candidates: 3, generator: &best)
        let scores = system.labelProbabilities(of: all, classifier, label: 1)
        XCTAssertEqual(chosen.count, 2)
        for group in 0..<2 {
            let members = (group * 3)..<(group * 3 + 3)
            XCTAssertEqual(chosen[group], all[members.max { scores[$0] < scores[$1] }!], "group \(group)")
        }
        XCTAssertEqual(system.labelProbabilities(of: [[]], classifier, label: 1), [0], "an empty passage scores 0")
    }

    func testUnknownLabelsAndOtherLatentSpacesAreRefused() throws {
        var rng = SeededGenerator(seed: 8)
        let classifier = LatentClassifier(smallConfig(), generator: &rng)
        XCTAssertThrowsError(try ClassifierGuidance(classifier: classifier, label: "happy", scale: 1)) { error in
            XCTAssertEqual((error as? LatentClassifierError)?.message, "unknown label \"happy\": this classifier knows \"minus\", \"plus\"")
        }
        XCTAssertThrowsError(try ClassifierGuidance(classifier: classifier, label: "plus", scale: -1))
        let system = InfillingTests.tinySystem()
        XCTAssertThrowsError(try classifier.check(reads: system.autoencoder)) { error in
            XCTAssertTrue("\(error)".contains("another autoencoder"), "\(error)")
        }
        var matching = smallConfig()
        matching.autoencoderWeights = String(system.autoencoder.weightsHash(), radix: 16)
        XCTAssertNoThrow(try LatentClassifier(matching, generator: &rng).check(reads: system.autoencoder))
    }
}
