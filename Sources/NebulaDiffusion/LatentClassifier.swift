import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// A latent classifier's shape and what it reads (`config.json` of a classifier folder).
public struct LatentClassifierConfig: Codable, Sendable, Equatable {
    /// The label names, in the order of the classifier's outputs.
    public var labels: [String] = []
    /// Latent vectors per passage (K) and their width (d): the autoencoder's.
    public var latents = 16
    public var latentWidth = 32
    /// Width of the two hidden layers.
    public var hidden = 256
    /// Width of the sinusoidal time features.
    public var timeWidth = 64
    /// The schedule the training latents were noised with. A loop on another schedule asks at the time of the same
    /// log-SNR (``LatentClassifier/classifierTime(_:of:)``), so one classifier serves any denoiser of its latent space.
    public var schedule = NoiseSchedule.cosine
    /// The autoencoder's weights hash (hex, ``Module/weightsHash()``): the latent space the classifier reads.
    public var autoencoderWeights = ""

    public init() {}

    enum CodingKeys: String, CodingKey {
        case labels, latents, latentWidth = "latent_width", hidden, timeWidth = "time_width", schedule
        case autoencoderWeights = "autoencoder_weights"
    }
}

/// A problem with a classifier or the label asked of it.
public struct LatentClassifierError: Error, LocalizedError, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var errorDescription: String? { message }
}

/// p(label | z_t): a small network on a passage's noised latent and the noise level, trained at every noise level
/// (`ClassifierTask`) so that its gradient can steer the loop at every step (classifier guidance, Dhariwal & Nichol
/// 2021, "Diffusion Models Beat GANs on Image Synthesis", §4). Each latent vector holds a patch of the passage's
/// tokens, so one MLP reads every vector (with its position), and the passage's features are their maximum — an
/// attribute is present when some patch shows it:
///
///     h_i = gelu(W_in·z_i + p_i + W_t·features(t))      [n, K, H]
///     h_i = h_i + gelu(W_h·h_i)
///     logits = W_out·max_i h_i                           [n, C]
///
/// ```swift
/// let classifier = try LatentClassifier.load(from: URL(fileURLWithPath: "models/tinystories/classifier"))
/// let logits = classifier(z, times: [0.3, 0.3])   // z: [2, K, d] → [2, C]
/// ```
public final class LatentClassifier: Module {
    public let config: LatentClassifierConfig
    public let input: Linear  // d → H
    public let position: Tensor  // [K, H]
    public let time: Linear  // timeWidth → H
    public let hidden: Linear  // H → H
    public let output: Linear  // H → C

    public init(_ config: LatentClassifierConfig, generator: inout SeededGenerator) {
        precondition(config.labels.count >= 2, "LatentClassifier: at least two labels are needed")
        self.config = config
        input = Linear(config.latentWidth, config.hidden, std: 1 / Float(config.latentWidth).squareRoot(), generator: &generator)
        position = Tensor.randn([config.latents, config.hidden], std: 0.02, generator: &generator).requiringGrad()
        time = Linear(config.timeWidth, config.hidden, generator: &generator)
        hidden = Linear(config.hidden, config.hidden, std: 1 / Float(config.hidden).squareRoot(), generator: &generator)
        output = Linear(config.hidden, config.labels.count, generator: &generator)
    }

    /// Logits `[n, C]` of noised latents `z: [n, K, d]` at `times` (one per row, on this classifier's schedule).
    public func callAsFunction(_ z: Tensor, times: [Float]) -> Tensor {
        let n = z.shape[0]
        precondition(
            z.shape == [n, config.latents, config.latentWidth] && times.count == n,
            "LatentClassifier: latents \(z.shape) and \(times.count) times for a [n, \(config.latents), \(config.latentWidth)] input")
        let noise = time(timestepEmbedding(times, width: config.timeWidth)).reshaped([n, 1, config.hidden])  // [n, 1, H]
        var h = (input(z) + position + noise).gelu()  // [n, K, H]
        h = h + hidden(h).gelu()
        return output(h.max(axis: 1))  // [n, C]
    }

    /// The index of `label`, or an error that lists the labels there are.
    public func labelIndex(_ label: String) throws -> Int {
        guard let index = config.labels.firstIndex(of: label) else {
            throw LatentClassifierError(
                "unknown label \"\(label)\": this classifier knows \(config.labels.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        return index
    }

    /// This classifier's time with the log-SNR that `schedule` has at `time`.
    public func classifierTime(_ time: Float, of schedule: NoiseSchedule) -> Float {
        Float(config.schedule.time(forLogSNR: schedule.logSNR(Double(time))))
    }

    /// ∇_z log p(label | z) `[n, K, d]` for every row of `z: [n, K, d]` at `time` (this classifier's schedule).
    public func logProbabilityGradient(_ z: Tensor, time: Float, label: Int) -> Tensor {
        let n = z.shape[0]
        return GradMode.withGrad {
            let point = Tensor(shape: z.shape, data: z.data).requiringGrad()
            // crossEntropy is the mean of −log p over the rows: −n times its gradient is each row's ∇ log p.
            crossEntropy(self(point, times: [Float](repeating: time, count: n)), targets: [Int32](repeating: Int32(label), count: n))
                .backward()
            return point.grad! * -Float(n)
        }
    }

    /// The probabilities `[n][C]` of clean latents `z: [n, K, d]` (time 0).
    public func probabilities(_ z: Tensor) -> [[Float]] {
        let c = config.labels.count
        let p = withNoGrad { self(z, times: [Float](repeating: 0, count: z.shape[0])).softmax() }.data
        return (0..<z.shape[0]).map { Array(p[($0 * c)..<(($0 + 1) * c)]) }
    }

    /// Loads a classifier folder (`config.json`, `model.safetensors`), frozen.
    public static func load(from directory: URL) throws -> LatentClassifier {
        let config = try ModelFolder.readConfig(LatentClassifierConfig.self, in: directory)
        let configURL = directory.appendingPathComponent(ModelFolder.config)
        guard config.labels.count >= 2, Set(config.labels).count == config.labels.count else {
            throw ModelFolderError(configURL, "a classifier needs at least two distinct labels, got \(config.labels)")
        }
        guard config.latents > 0, config.latentWidth > 0, config.hidden > 0, config.timeWidth > 0, config.timeWidth % 2 == 0 else {
            throw ModelFolderError(configURL, "invalid classifier sizes (latents, latent_width, hidden, time_width)")
        }
        try ModelFolder.checkSize(
            of: configURL, needs: Double(config.latents + config.latentWidth + config.hidden) * Double(config.hidden),
            files: [SafeTensorsFile(contentsOf: directory.appendingPathComponent(ModelFolder.weights))])
        var rng = SeededGenerator.forLoading
        let classifier = LatentClassifier(config, generator: &rng)
        try ModelFolder.loadWeights(classifier, from: directory)
        classifier.eval()
        classifier.freeze()
        return classifier
    }

    /// Refuses a classifier trained on another latent space than `autoencoder`'s.
    public func check(reads autoencoder: LatentAutoencoder) throws {
        let hash = String(autoencoder.weightsHash(), radix: 16)
        guard config.latents == autoencoder.config.latents, config.latentWidth == autoencoder.config.latentWidth,
            config.autoencoderWeights == hash
        else {
            throw LatentClassifierError(
                "the classifier was trained on another autoencoder (weights \(config.autoencoderWeights), latents \(config.latents) × \(config.latentWidth)) than this bundle's (weights \(hash), latents \(autoencoder.config.latents) × \(autoencoder.config.latentWidth))"
            )
        }
    }
}

/// Classifier guidance: every step of the loop moved towards a label by a classifier's gradient, in one of two ways.
///
/// - ``Target/noisyLatent``: the noise estimate, ε̂' = ε̂ − scale·σ_t·∇_z log p(label | z_t) — the score of
///   p(z_t)·p(label | z_t)^scale (Dhariwal & Nichol 2021, §4.2), with the classifier asked at the step's noise level.
/// - ``Target/estimate``: the step's clean estimate, x0̂' = x0̂ + scale·∇ log p(label | x0̂), with the classifier asked
///   at time 0, where it is most accurate (as universal guidance's forward term, Bansal et al. 2023, without the
///   backward pass through the denoiser).
///
/// ```swift
/// let steering = try ClassifierGuidance(classifier: classifier, label: "dialogue", scale: 4)
/// let z = system.sample(count: 8, config, steering: steering, generator: &rng)
/// ```
public struct ClassifierGuidance {
    /// What the classifier's gradient moves.
    public enum Target: String, Codable, Sendable, CaseIterable {
        case noisyLatent = "noisy-latent", estimate
    }

    public let classifier: LatentClassifier
    public let label: Int
    /// The guidance scale: 0 is the unguided loop.
    public let scale: Float
    public let target: Target

    public init(classifier: LatentClassifier, label: String, scale: Float, target: Target = .estimate) throws {
        guard scale.isFinite, scale >= 0 else { throw LatentClassifierError("the classifier scale must be non-negative, got \(scale)") }
        self.classifier = classifier
        self.label = try classifier.labelIndex(label)
        self.scale = scale
        self.target = target
    }

    /// The model output for `sample` at `time`, moved. The objective's conversion is linear: as
    /// ε̂ = c_ε·output + c′_ε·z and x0̂ = c_x·output + c′_x·z, moving ε̂ by δ moves the output by δ/c_ε, and x0̂ by δ/c_x.
    public func guided(_ output: Tensor, sample: Tensor, time: Float, schedule: NoiseSchedule, objective: Objective) -> Tensor {
        guard scale != 0 else { return output }
        let (alpha, sigma) = schedule.alphaSigma(Double(time))
        let conversion = objective.conversion(alpha: alpha, sigma: sigma)
        switch target {
        case .noisyLatent:
            let gradient = classifier.logProbabilityGradient(sample, time: classifier.classifierTime(time, of: schedule), label: label)
            return output + gradient * Float(-Double(scale) * sigma / conversion.epsFromOutput)
        case .estimate:
            let estimate = output * Float(conversion.x0FromOutput) + sample * Float(conversion.x0FromSample)  // x0̂
            let gradient = classifier.logProbabilityGradient(estimate, time: 0, label: label)
            return output + gradient * Float(Double(scale) / conversion.x0FromOutput)
        }
    }
}

extension LatentDiffusion {
    /// `count` passages (token ids) from the loop steered by `steering`, decoded as `config` says; with `candidates` > 1
    /// each is the best of that many loops by the classifier's p(label) of its words encoded again — what the text
    /// says, which the guided latent can overstate (the classifier gives guided latents near-certain probabilities
    /// whose decoded text does not always carry the label).
    public func steeredPassages(
        count: Int, _ config: GenerationConfig, steering: ClassifierGuidance, candidates: Int = 1, generator: inout SeededGenerator
    ) -> [[Int]] {
        precondition(count >= 1 && candidates >= 1, "steeredPassages: count and candidates must be positive")
        let z = sample(count: count * candidates, config, steering: steering, generator: &generator)  // [count·candidates, K, d]
        let passages = decode(z, config, generator: &generator)
        guard candidates > 1 else { return passages }
        let scores = labelProbabilities(of: passages, steering.classifier, label: steering.label)
        return stride(from: 0, to: passages.count, by: candidates).map { first in
            passages[(first..<(first + candidates)).max { scores[$0] < scores[$1] }!]
        }
    }

    /// The classifier's p(label) of each passage's words encoded again (0 for an empty passage).
    public func labelProbabilities(of passages: [[Int]], _ classifier: LatentClassifier, label: Int) -> [Double] {
        let limit = autoencoder.config.maxLength
        let written = passages.indices.filter { !passages[$0].isEmpty }
        guard !written.isEmpty else { return passages.map { _ in 0 } }
        let latents = autoencoder.encode(written.map { passages[$0].prefix(limit).map(Int32.init) })  // [w, K, d]
        var scores = [Double](repeating: 0, count: passages.count)
        for (index, p) in zip(written, classifier.probabilities(latents)) { scores[index] = Double(p[label]) }
        return scores
    }
}
