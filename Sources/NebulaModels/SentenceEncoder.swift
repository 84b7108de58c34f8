import Foundation
import NebulaNN
import NebulaTensor
import NebulaText

/// A sentence-transformers model read natively: a BERT encoder, its WordPiece tokenizer, and the pooling
/// its `1_Pooling/config.json` names (mean over the tokens, or the `[CLS]` state), L2-normalised when its
/// `modules.json` lists a `Normalize` module (or has no `modules.json`). `all-MiniLM-L6-v2` is one: the
/// judge whose features MAUVE reads in `nebula eval generation --judge`, trained by others and so never
/// the judge of its own text.
///
/// ```swift
/// let judge = try SentenceEncoder(folder: URL(fileURLWithPath: ".build/judge/all-MiniLM-L6-v2"))
/// let vectors = judge.embed(["Once upon a time, there was a cat.", "The cat sat."])   // 2 × [384], unit length
/// ```
public struct SentenceEncoder {
    public enum Pooling: String, Sendable { case mean, cls }

    public let model: BERT
    public let tokenizer: WordPieceTokenizer
    public let pooling: Pooling
    public let normalizes: Bool

    public init(model: BERT, tokenizer: WordPieceTokenizer, pooling: Pooling = .mean, normalizes: Bool = true) {
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalizes = normalizes
    }

    /// Reads a sentence-transformers folder: `config.json`, `model.safetensors`, `tokenizer.json`, and
    /// optionally `1_Pooling/config.json` (default: mean pooling) and `modules.json`.
    public init(folder: URL) throws {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent(ModelFolder.config).path) else {
            throw ModelFolderError(folder, "not a sentence encoder folder (no config.json); `make judge` installs all-MiniLM-L6-v2")
        }
        let model = try BERT.load(from: folder)
        let tokenizer = try WordPieceTokenizer(huggingFaceFile: folder.appendingPathComponent("tokenizer.json"))
        guard tokenizer.vocabulary.values.allSatisfy({ $0 < model.config.vocabSize }) else {
            throw ModelFolderError(
                folder.appendingPathComponent("tokenizer.json"), "has ids beyond the model's vocabulary of \(model.config.vocabSize)")
        }
        let poolingURL = folder.appendingPathComponent("1_Pooling/config.json")
        var pooling = Pooling.mean
        if let data = FileManager.default.contents(atPath: poolingURL.path) {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelFolderError(poolingURL, "not a JSON object")
            }
            let modes = [
                "pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"
            ]
            .filter { object[$0] as? Bool == true }
            switch modes {
            case ["pooling_mode_mean_tokens"]: pooling = .mean
            case ["pooling_mode_cls_token"]: pooling = .cls
            default: throw ModelFolderError(poolingURL, "pooling \(modes) is not supported (one of mean tokens or the CLS token)")
            }
        }
        var normalizes = true
        let modulesURL = folder.appendingPathComponent("modules.json")
        if let data = FileManager.default.contents(atPath: modulesURL.path) {
            guard let modules = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
                throw ModelFolderError(modulesURL, "not a JSON array of modules")
            }
            normalizes = modules.contains { ($0["type"] as? String)?.hasSuffix(".Normalize") == true }
        }
        self.init(model: model, tokenizer: tokenizer, pooling: pooling, normalizes: normalizes)
    }

    /// One vector per text (`C` values each), in batches of texts of similar length.
    public func embed(_ texts: [String], batchSize: Int = 32) -> [[Float]] {
        let encoded = texts.map { tokenizer.encode($0, limit: model.config.positions).map(Int32.init) }
        let c = model.config.width
        var vectors = [[Float]](repeating: [], count: texts.count)
        let order = encoded.indices.sorted { encoded[$0].count < encoded[$1].count }  // little padding per batch
        withNoGrad {
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let rows = Array(order[start..<min(start + batchSize, order.count)])
                let length = rows.map { encoded[$0].count }.max()!
                var ids = [Int32](repeating: 0, count: rows.count * length)
                var mask = [Float](repeating: 0, count: rows.count * length)
                for (b, row) in rows.enumerated() {
                    for (t, id) in encoded[row].enumerated() { ids[b * length + t] = id; mask[b * length + t] = 1 }
                }
                let hidden = model(ids, batch: rows.count, length: length, keyMask: mask).data  // [B, T, C]
                for (b, row) in rows.enumerated() {
                    var vector = [Float](repeating: 0, count: c)
                    let tokens = pooling == .cls ? 1 : encoded[row].count
                    for t in 0..<tokens { for j in 0..<c { vector[j] += hidden[(b * length + t) * c + j] } }
                    for j in 0..<c { vector[j] /= Float(tokens) }
                    if normalizes {
                        let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                        for j in 0..<c { vector[j] /= norm }
                    }
                    vectors[row] = vector
                }
            }
        }
        return vectors
    }
}
