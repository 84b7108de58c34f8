import Foundation

/// What `nebula eval generation` measured, as written to its JSON file and read by `nebula report`.
public struct GenerationResults: Codable, Sendable {
    /// One system (or the human baseline) scored over one or more seeds.
    public struct Row: Codable, Sendable {
        public var name: String
        /// Trainable parameters behind the texts (0 for human text).
        public var parameters: Int
        public var samples: Int
        public var seeds: Int
        /// Per figure (``GenerationScores/names``): mean and standard deviation over seeds.
        public var mean: [String: Double]
        public var std: [String: Double]
        public var secondsPerSample: Double
        public var examples: [String]

        /// The key of ``mean`` and ``std`` that holds the Fréchet distance of a row's latents to the encoder's
        /// latents of held-out text (``frechetDistance(_:_:)``), for rows whose texts are decoded from latents.
        public static let latentDistance = "latent_fd"

        /// `latentDistances`: one per seed, for rows decoded from latents (nil for the others).
        public init(
            name: String, parameters: Int, runs: [(scores: GenerationScores, seconds: Double)], samples: Int, examples: [String],
            latentDistances: [Double]? = nil
        ) {
            self.name = name
            self.parameters = parameters
            self.samples = samples
            seeds = runs.count
            mean = [:]
            std = [:]
            var figures = GenerationScores.names.map { key in (key, runs.map { $0.scores.value(key) }) }
            for key in GenerationScores.judgeNames {  // a judge's figure only where it judged
                let values = runs.map { $0.scores.value(key) }
                if !values.contains(where: \.isNaN) { figures.append((key, values)) }
            }
            if let latentDistances { figures.append((Self.latentDistance, latentDistances)) }
            for (key, values) in figures {
                let m = values.reduce(0, +) / Double(values.count)
                mean[key] = m
                std[key] = values.count > 1 ? (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : 0
            }
            secondsPerSample = runs.map(\.seconds).reduce(0, +) / Double(runs.count)
            self.examples = examples
        }

        enum CodingKeys: String, CodingKey {
            case name, parameters, samples, seeds, mean, std, examples, secondsPerSample = "seconds_per_sample"
        }
    }

    /// Unconditional quality at one number of loop steps.
    public struct StepsPoint: Codable, Sendable {
        public var steps: Int
        public var scores: GenerationScores
        public var secondsPerSample: Double
        public var example: String
        public init(steps: Int, scores: GenerationScores, secondsPerSample: Double, example: String) {
            self.steps = steps
            self.scores = scores
            self.secondsPerSample = secondsPerSample
            self.example = example
        }
        enum CodingKeys: String, CodingKey { case steps, scores, example, secondsPerSample = "seconds_per_sample" }
    }

    /// Continuations of held-out prompts, scored against the true next passage.
    public struct ContinuationPoint: Codable, Sendable {
        /// The system: "diffusion" (with its guidance weight and steps) or an AR baseline.
        public var system: String
        public var guidance: Double?
        public var steps: Int?
        /// Mean ROUGE-L F between each continuation and the true next passage.
        public var rougeL: Double
        /// MAUVE of the continuations against the true next passages (the frozen LM's features).
        public var mauve: Double
        /// The same on the independent sentence encoder's features, when one judged.
        public var judgeMAUVE: Double?
        public var secondsPerSample: Double
        public init(
            system: String, guidance: Double?, steps: Int?, rougeL: Double, mauve: Double, judgeMAUVE: Double? = nil,
            secondsPerSample: Double
        ) {
            self.system = system
            self.guidance = guidance
            self.steps = steps
            self.rougeL = rougeL
            self.mauve = mauve
            self.judgeMAUVE = judgeMAUVE
            self.secondsPerSample = secondsPerSample
        }
        enum CodingKeys: String, CodingKey {
            case system, guidance, steps, mauve, rougeL = "rouge_l", judgeMAUVE = "judge_mauve", secondsPerSample = "seconds_per_sample"
        }
    }

    /// The command line that produced these results.
    public var command: String
    public var date: String
    /// Number of held-out human passages in the MAUVE reference set.
    public var referencePassages: Int
    public var sampler: String
    public var rows: [Row] = []
    public var stepsSweep: [StepsPoint] = []
    public var continuation: [ContinuationPoint] = []
    /// The held-out prompts the continuation rows used.
    public var prompts: Int = 0

    public init(command: String, date: String, referencePassages: Int, sampler: String) {
        self.command = command
        self.date = date
        self.referencePassages = referencePassages
        self.sampler = sampler
    }

    enum CodingKeys: String, CodingKey {
        case command, date, sampler, rows, continuation, prompts
        case referencePassages = "reference_passages", stepsSweep = "steps_sweep"
    }
}
