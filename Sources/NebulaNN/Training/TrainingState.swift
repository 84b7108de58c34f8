import Foundation
import NebulaTensor

/// Everything beyond the weights that a run needs to continue exactly where it stopped: the step, the
/// optimizer's moments, and the data sampler's random state. Saved as `training_state.safetensors`
/// (`adam.m.<name>`, `adam.v.<name>`; step and RNG state in the metadata).
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

    /// Writes the state with the optimizer's moments, atomically.
    public func save(optimizer: AdamW, to url: URL) throws {
        var entries: [SafeTensorsEntry] = []
        for name in optimizer.firstMoments.keys.sorted() {
            let m = optimizer.firstMoments[name]!, v = optimizer.secondMoments[name]!
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
    public static func load(from url: URL, into optimizer: AdamW) throws -> TrainingState {
        let file = try SafeTensorsFile(contentsOf: url)
        func fail(_ problem: String) -> Error {
            SafeTensorsError(.invalidEntry, source: url.path, problem)
        }
        guard let step = file.metadata["step"].flatMap(Int.init),
              let optimizerSteps = file.metadata["optimizer_steps"].flatMap(Int.init) else {
            throw fail("expected integer \"step\" and \"optimizer_steps\" in the metadata, found \(file.metadata.keys.sorted())")
        }
        let words = (file.metadata["rng"] ?? "").split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4 else { throw fail("expected 4 comma-separated RNG words in \"rng\", found \(words.count)") }
        optimizer.firstMoments = [:]
        optimizer.secondMoments = [:]
        for info in file.tensors {
            if info.name.hasPrefix("adam.m.") { optimizer.firstMoments[String(info.name.dropFirst(7))] = try file.floats(info.name) }
            if info.name.hasPrefix("adam.v.") { optimizer.secondMoments[String(info.name.dropFirst(7))] = try file.floats(info.name) }
        }
        optimizer.restore(stepCount: optimizerSteps)
        var generator = SeededGenerator(seed: 0)
        generator.state = words
        var extra = file.metadata
        for key in ["step", "optimizer_steps", "rng"] { extra[key] = nil }
        return TrainingState(step: step, generator: generator, extra: extra)
    }
}
