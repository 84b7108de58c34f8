import Foundation
import NebulaTensor

/// Everything a run needs to continue exactly where it stopped: the trainable weights, the step, the
/// optimizer's moments, the data sampler's random state and a task's extra tensors. Saved as one file,
/// `training_state.safetensors` (`weights.<name>`, `adam.m.<name>`, `adam.v.<name>`, extras; step and RNG
/// state in the metadata), so one durable rename commits a whole step.
public struct TrainingState {
    public var step: Int
    public var generator: SeededGenerator
    /// Extra figures to carry across a resume (e.g. the best validation loss).
    public var extra: [String: String]

    public init(step: Int, generator: SeededGenerator, extra: [String: String] = [:]) {
        self.step = step
        self.generator = generator
        self.extra = extra
    }

    /// Writes the state with the weights, the optimizer's moments and `extras`, durably.
    public func save(optimizer: AdamW, weights: [(String, Tensor)] = [], extras: [SafeTensorsEntry] = [], to url: URL) throws {
        var entries = weights.map { SafeTensorsEntry(name: "weights.\($0.0)", shape: $0.1.shape, floats: $0.1.data) } + extras
        for name in optimizer.parameterNames {
            let (m, v) = optimizer.moments(of: name)!
            entries.append(SafeTensorsEntry(name: "adam.m.\(name)", shape: [m.count], floats: m))
            entries.append(SafeTensorsEntry(name: "adam.v.\(name)", shape: [v.count], floats: v))
        }
        var metadata = extra
        metadata["step"] = String(step)
        metadata["optimizer_steps"] = String(optimizer.stepCount)
        metadata["rng"] = generator.state.map(String.init).joined(separator: ",")
        try writeSafeTensors(entries, metadata: metadata, to: url)
    }

    /// Reads a state and restores the optimizer's moments and step count.
    public static func load(from file: SafeTensorsFile, into optimizer: AdamW) throws -> TrainingState {
        func fail(_ problem: String) -> Error {
            SafeTensorsError(.invalidEntry, source: file.source, problem)
        }
        guard let step = file.metadata["step"].flatMap(Int.init),
            let optimizerSteps = file.metadata["optimizer_steps"].flatMap(Int.init)
        else {
            throw fail("expected integer \"step\" and \"optimizer_steps\" in the metadata, found \(file.metadata.keys.sorted())")
        }
        let words = (file.metadata["rng"] ?? "").split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4 else { throw fail("expected 4 comma-separated RNG words in \"rng\", found \(words.count)") }
        optimizer.clearMoments()
        for info in file.tensors where info.name.hasPrefix("adam.m.") {
            let name = String(info.name.dropFirst(7))
            let (first, second) = (try file.floats(info.name), try file.floats("adam.v.\(name)"))
            guard first.count == second.count else {
                throw fail("adam.m.\(name) has \(first.count) values but adam.v.\(name) has \(second.count)")
            }
            optimizer.setMoments(of: name, first: first, second: second)
        }
        optimizer.restore(stepCount: optimizerSteps)
        var generator = SeededGenerator(seed: 0)
        generator.state = words
        var extra = file.metadata
        for key in ["step", "optimizer_steps", "rng"] { extra[key] = nil }
        return TrainingState(step: step, generator: generator, extra: extra)
    }

    /// Assigns the stored `weights.<name>` tensors to `parameters`; false when the file holds no weights (a
    /// state written before it did), throws when some are missing or misshapen.
    public static func restoreWeights(_ parameters: [(String, Tensor)], from file: SafeTensorsFile) throws -> Bool {
        guard file.tensors.contains(where: { $0.name.hasPrefix("weights.") }) else { return false }
        for (name, parameter) in parameters {
            let stored = "weights.\(name)"
            guard let info = file.info(stored) else {
                throw SafeTensorsError(.missingTensor, source: file.source, "no \(stored) for the trainable parameter \(name)")
            }
            guard info.shape == parameter.shape else {
                throw SafeTensorsError(.invalidEntry, source: file.source, "\(stored) has shape \(info.shape), expected \(parameter.shape)")
            }
            parameter.assign(try file.floats(stored))
        }
        return true
    }
}
