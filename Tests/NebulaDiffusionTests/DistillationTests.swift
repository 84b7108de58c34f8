import XCTest
import NebulaModels
import NebulaNN
@testable import NebulaTensor
@testable import NebulaDiffusion

/// Progressive distillation: the target is the one-step twin of two teacher steps, and training a student on it
/// brings its few-step samples to the teacher's twice-as-many-step samples.
final class DistillationTests: XCTestCase {
    func tinyConfig(steps: Int, selfConditioning: Bool, sampler: SamplerKind = .ddim, noiseScale: Float = 1) -> LatentDiffusionConfig {
        var config = LatentDiffusionConfig()
        (config.network.latents, config.network.latentWidth, config.network.width) = (4, 8, 16)
        (config.network.layers, config.network.heads, config.network.selfConditioning) = (1, 2, selfConditioning)
        config.schedule = NoiseSchedule(scale: 0.5)
        config.distillation = DistillationRecord(
            steps: steps, teacherSteps: 2 * steps, sampler: sampler, noiseScale: noiseScale, renormalizeEstimates: true)
        return config
    }

    /// At every grid point of the student the teacher's two steps land where two steps of the library's sampler do
    /// (its estimates renormalised, as the sampler does by default; ddpm without noise, so its step is its mean), and
    /// the loss is the squared distance from the student's one library step to there, over the step's x0 weight².
    func testLossMeasuresOneStudentStepAgainstTwoTeacherSteps() throws {
        for kind in SamplerKind.allCases {
            let config = tinyConfig(steps: 2, selfConditioning: true, sampler: kind, noiseScale: 0)
            var rng = SeededGenerator(seed: 11)
            let (teacher, student) = (Denoiser(config.network, generator: &rng), Denoiser(config.network, generator: &rng))
            for (_, p) in student.namedParameters() { p.data = p.data.map { _ in Float.random(in: -0.1...0.1, using: &rng) } }
            let task = DistillationTask(
                config: config, teacher: teacher, student: student, latents: Tensor.randn([6, 4, 8], generator: &rng), validation: nil)
            let renormalise: (Tensor) -> Tensor = { layerNorm($0, weight: nil, bias: nil) }
            let sampler = makeSampler(kind, schedule: config.schedule, objective: .v, normalizeX0: renormalise, noiseScale: 0)
            for point in 1...2 {
                let (x0, noise) = (Tensor.randn([3, 4, 8], generator: &rng), Tensor.randn([3, 4, 8], generator: &rng))
                let (time, halfway, next) = (Float(point) / 2, (Float(point) - 0.5) / 2, Float(point - 1) / 2)
                let z = config.schedule.noised(x0, noise: noise, times: [time, time, time])
                let none = [false, false, false]
                let (selfCondition, landing) = withNoGrad {
                    task.target(z, grid: [point, point, point], selfCondition: none, generator: &rng)
                }
                XCTAssertEqual(selfCondition.data, [Float](repeating: 0, count: z.count))
                let first = sampler.step(
                    modelOutput: withNoGrad { teacher(z, times: [time, time, time]) }, time: time, nextTime: halfway, sample: z,
                    generator: &rng)
                let second = sampler.step(
                    modelOutput: withNoGrad { teacher(first.sample, times: [halfway, halfway, halfway], selfCondition: first.predictedX0) },
                    time: halfway, nextTime: next, sample: first.sample, generator: &rng)
                for (a, b) in zip(landing.data, second.sample.data) { XCTAssertEqual(a, b, accuracy: 1e-4, "\(kind), grid point \(point)") }

                let one = sampler.step(
                    modelOutput: withNoGrad { student(z, times: [time, time, time]) }, time: time, nextTime: next, sample: z,
                    generator: &rng)
                let squared =
                    zip(one.sample.data, second.sample.data).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(z.count)
                let weight = Double(withNoGrad { task.stepCoefficients(from: [time], to: [next]).fromX0.item })
                let loss = withNoGrad {
                    task.distillationLoss(
                        x0: x0, noise: noise, grid: [point, point, point], selfCondition: none, model: student, generator: &rng)
                }
                XCTAssertEqual(
                    Double(loss.item), squared / (weight * weight), accuracy: 1e-4 * max(1, squared / (weight * weight)), "\(kind)")
                XCTAssertGreaterThan(squared, 0)
            }
        }
    }

    /// With ddpm noise, each landing averages the teacher's landings from an antithetic pair of first-step draws, +n
    /// and −n: it still varies with the draw, but far less than a single draw's landing does.
    func testAncestralLandingsAverageAnAntitheticPair() {
        let config = tinyConfig(steps: 2, selfConditioning: false, sampler: .ddpm, noiseScale: 1)
        var rng = SeededGenerator(seed: 14)
        let teacher = Denoiser(config.network, generator: &rng)
        for (_, p) in teacher.namedParameters() { p.data = p.data.map { _ in Float.random(in: -0.3...0.3, using: &rng) } }
        let task = DistillationTask(
            config: config, teacher: teacher, student: teacher, latents: Tensor.randn([2, 4, 8], generator: &rng), validation: nil)
        let z = Tensor.randn([1, 4, 8], generator: &rng)
        var draws = SeededGenerator(seed: 3)
        let landing = withNoGrad { task.target(z, grid: [2], selfCondition: [false], generator: &draws).landing }
        // The same pair by hand, through the library's sampler: n is the draw the task made.
        var replay = SeededGenerator(seed: 3)
        let n = Tensor.randn(z.shape, generator: &replay)
        let std = Float(task.stepCoefficients(from: [1], to: [0.75]).noise.item)
        let noiseless = DDPMSampler(
            schedule: config.schedule, objective: .v, normalizeX0: { layerNorm($0, weight: nil, bias: nil) }, noiseScale: 0)
        let centre = noiseless.step(
            modelOutput: withNoGrad { teacher(z, times: [1]) }, time: 1, nextTime: 0.75, sample: z, generator: &replay)
        func land(_ start: Tensor) -> Tensor {
            noiseless.step(
                modelOutput: withNoGrad { teacher(start, times: [0.75]) }, time: 0.75, nextTime: 0.5,
                sample: start, generator: &replay
            ).sample
        }
        let expected = (land(centre.sample + n * std) + land(centre.sample - n * std)) * 0.5
        for (a, b) in zip(landing.data, expected.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        let single = land(centre.sample + n * std)
        let spread = zip(single.data, landing.data).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(spread, 1e-3, "a single draw's landing differs from the pair's average")
    }

    /// The self-conditioning input is the teacher's own estimate at z on the rows that ask for it, zero elsewhere.
    func testSelfConditioningInputIsTheTeachersEstimateOnChosenRows() {
        let config = tinyConfig(steps: 4, selfConditioning: true)
        var rng = SeededGenerator(seed: 12)
        let teacher = Denoiser(config.network, generator: &rng)
        let task = DistillationTask(
            config: config, teacher: teacher, student: teacher, latents: Tensor.randn([2, 4, 8], generator: &rng), validation: nil)
        let z = Tensor.randn([2, 4, 8], generator: &rng)
        let (input, _) = withNoGrad { task.target(z, grid: [3, 3], selfCondition: [true, false], generator: &rng) }
        let own = withNoGrad { task.estimate(teacher, z, times: [0.75, 0.75], previous: Tensor.zeros(z.shape)) }
        XCTAssertEqual(Array(input.data[..<32]), Array(own.data[..<32]))
        XCTAssertEqual(Array(input.data[32...]), [Float](repeating: 0, count: 32))
    }

    /// A student trained for a few hundred steps samples in S ddim steps nearer to the teacher's 2S-step samples
    /// (same noise) than the teacher itself does in S steps.
    func testTrainedStudentMatchesTheTeacherWithHalfTheSteps() throws {
        let config = tinyConfig(steps: 2, selfConditioning: false)
        var rng = SeededGenerator(seed: 13)
        // A teacher trained on latents around two centres, whose few-step and many-step samples differ.
        let centres = Tensor.randn([2, 4, 8], generator: &rng)
        let latents = Tensor.concatenate(
            (0..<64).map { centres.rows([$0 % 2]) + Tensor.randn([1, 4, 8], std: 0.1, generator: &rng) }, axis: 0)
        let teacher = Denoiser(config.network, generator: &rng)
        let pretraining = DiffusionTask(
            config: config, denoiser: teacher, latents: latents, previous: [Int?](repeating: nil, count: 64), validation: nil)
        try quietTrainer(pretraining, steps: 300, learningRate: 3e-3, batchSize: 16).run()
        teacher.eval()
        let student = Denoiser(config.network, generator: &rng)
        for ((_, s), (_, t)) in zip(student.namedParameters(), teacher.namedParameters()) { s.data = t.data }
        let task = DistillationTask(config: config, teacher: teacher, student: student, latents: latents, validation: latents)
        let before = task.evaluate(batches: 1, batchSize: 16)["val_loss"]!
        let summary = try quietTrainer(task, steps: 300, learningRate: 3e-3, batchSize: 16).run()
        XCTAssertLessThan(summary.evaluation["val_loss"]!, before / 3, "the distillation loss falls")

        student.eval()
        func samples(_ model: Denoiser, steps: Int) -> [Float] {
            var sampler = DDIMSampler(schedule: config.schedule, objective: .v, normalizeX0: { layerNorm($0, weight: nil, bias: nil) })
            sampler.setTimesteps(steps)
            var noise = SeededGenerator(seed: 99)
            let z1 = Tensor.randn([32, 4, 8], generator: &noise)
            return sampler.sample(from: z1, generator: &noise) { z, t, _ in model(z, times: [Float](repeating: t, count: 32)) }.data
        }
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(a.count) }
        let reference = samples(teacher, steps: 4)
        let (distilled, undistilled) = (distance(samples(student, steps: 2), reference), distance(samples(teacher, steps: 2), reference))
        XCTAssertLessThan(
            distilled, undistilled / 2, "student 2 steps \(distilled) vs teacher 2 steps \(undistilled), from teacher 4 steps")
    }

    /// A distilled denoiser samples with its sampler and noise at its step count by default, and refuses others.
    func testDistilledSystemTakesItsSamplerAndRefusesOtherStepCounts() throws {
        let tiny = InfillingTests.tinySystem()
        var config = tiny.config
        config.distillation = DistillationRecord(steps: 4, teacherSteps: 8, sampler: .ddpm, noiseScale: 1.6, renormalizeEstimates: true)
        let system = LatentDiffusion(config: config, denoiser: tiny.denoiser, autoencoder: tiny.autoencoder)
        let resolved = try system.configuration(for: GenerationRequest(steps: 4))
        XCTAssertEqual(resolved.sampler, .ddpm)
        XCTAssertEqual(resolved.noiseScale, 1.6)
        XCTAssertThrowsError(try system.configuration(for: GenerationRequest(steps: 50))) {
            XCTAssertEqual("\($0)", "steps must be 4 for this distilled denoiser, got 50")
        }
        XCTAssertThrowsError(try system.configuration(for: GenerationRequest(steps: 4, sampler: .ddim))) {
            XCTAssertEqual("\($0)", "sampler must be ddpm for this distilled denoiser, got ddim")
        }
        XCTAssertEqual(try tiny.configuration(for: GenerationRequest(steps: 4)).sampler, .ddpm, "an undistilled denoiser: ddpm")
    }

    /// A bundle's distilled denoisers are its `distilled/N-steps/` folders that hold a config; others are ignored.
    func testBundleFindsItsDistilledDenoisers() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-bundle-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        for folder in ["diffusion", "autoencoder", "distilled/4-steps", "distilled/8-steps", "distilled/fast"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try ModelFolder.writeConfig(LatentDiffusionConfig(), in: root.appendingPathComponent("diffusion"))
        try ModelFolder.writeConfig(AutoencoderConfig(), in: root.appendingPathComponent("autoencoder"))
        var distilled = LatentDiffusionConfig()
        distilled.autoencoder = "../../autoencoder"
        try ModelFolder.writeConfig(distilled, in: root.appendingPathComponent("distilled/4-steps"))
        try ModelFolder.writeConfig(distilled, in: root.appendingPathComponent("distilled/fast"))
        for start in [root, root.appendingPathComponent("diffusion")] {
            let folders = try BundleFolders(resolving: start)
            XCTAssertEqual(folders.distilled.keys.sorted(), [4], "8-steps has no config; fast is not N-steps")
            XCTAssertEqual(folders.distilled[4]?.standardizedFileURL, root.appendingPathComponent("distilled/4-steps").standardizedFileURL)
        }
    }
}
