import Foundation
import NebulaTensor

/// Why a checkpoint does not fit a module: every missing, unexpected and mis-shaped tensor, by name.
public struct CheckpointMismatch: Error, LocalizedError, Sendable {
    public let source: String
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var shapeMismatches: [(name: String, expected: [Int], found: [Int])] = []

    public var errorDescription: String? {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing \(list(missing))") }
        if !unexpected.isEmpty { parts.append("unexpected \(list(unexpected))") }
        if !shapeMismatches.isEmpty {
            parts.append("shape mismatch " + list(shapeMismatches.map { "\($0.name) (expected \($0.expected), found \($0.found))" }))
        }
        return "\(source): checkpoint does not match the model: " + parts.joined(separator: "; ")
    }

    private func list(_ names: [String]) -> String {
        names.count <= 4 ? names.joined(separator: ", ") : names.prefix(4).joined(separator: ", ") + " and \(names.count - 4) more"
    }
}

extension SafeTensorsFile {
    /// A float tensor of the file (F32, F16 or BF16) as a `Tensor`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else {
            throw SafeTensorsError(.missingTensor, source: source, "expected a tensor named \"\(name)\", found none")
        }
        return Tensor(shape: info.shape, data: try floats(name))
    }
}

extension Module {
    /// Copies parameters from a safetensors file whose names match this module's (optionally under a
    /// `prefix`, e.g. `"lm."`). Every parameter must be present with its shape; with `strict`, the file may
    /// hold no other tensor under the prefix. Parameters whose names start with one of `keeping` may be absent
    /// and then keep their values (a model grown from a checkpoint of a smaller one). Nothing is changed unless
    /// everything fits.
    public func load(_ file: SafeTensorsFile, prefix: String = "", strict: Bool = true, keeping: [String] = []) throws {
        var mismatch = CheckpointMismatch(source: file.source)
        let parameters = namedParameters().filter { name, _ in
            file.info(prefix + name) != nil || !keeping.contains { name.hasPrefix($0) }
        }
        let expected = Set(parameters.map { prefix + $0.0 })
        for (name, p) in parameters {
            guard let info = file.info(prefix + name) else { mismatch.missing.append(prefix + name); continue }
            if info.shape != p.shape { mismatch.shapeMismatches.append((prefix + name, p.shape, info.shape)) }
        }
        if strict {
            mismatch.unexpected = file.tensors.map(\.name).filter { $0.hasPrefix(prefix) && !expected.contains($0) }
        }
        guard mismatch.missing.isEmpty && mismatch.unexpected.isEmpty && mismatch.shapeMismatches.isEmpty else { throw mismatch }
        let values = try parameters.map { try file.floats(prefix + $0.0) }
        for ((_, p), v) in zip(parameters, values) { p.assign(v) }
    }

    /// Loads parameters from a safetensors file (see `load(_:prefix:strict:keeping:)`).
    ///
    /// ```swift
    /// try model.load(safetensors: folder.appendingPathComponent("model.safetensors"))
    /// ```
    public func load(safetensors url: URL, prefix: String = "", strict: Bool = true, keeping: [String] = []) throws {
        try load(SafeTensorsFile(contentsOf: url), prefix: prefix, strict: strict, keeping: keeping)
    }

    /// The parameters as safetensors entries named `prefix + name`.
    public func safetensorsEntries(prefix: String = "", dtype: SafeTensorsDType = .f32) -> [SafeTensorsEntry] {
        namedParameters().map { SafeTensorsEntry(name: prefix + $0.0, shape: $0.1.shape, floats: $0.1.data, dtype: dtype) }
    }

    /// Writes every parameter to a safetensors file, atomically (temporary file, then rename).
    public func save(safetensors url: URL, dtype: SafeTensorsDType = .f32, metadata: [String: String] = [:]) throws {
        try writeSafeTensors(safetensorsEntries(dtype: dtype), metadata: metadata, to: url)
    }
}
