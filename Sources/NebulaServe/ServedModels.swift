import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText

/// The models a server answers with, loaded once from a bundle: the diffusion system and, inside its
/// autoencoder, the frozen language model (served on its own too). Only the model worker's thread runs them.
///
/// ```swift
/// let models = try ServedModels.load(bundle: URL(fileURLWithPath: "models/tinystories"))
/// models.languageModelID     // "tinystories-lm"
/// models.diffusionID         // "tinystories-diffusion"
/// ```
public final class ServedModels: @unchecked Sendable {
    public let system: LatentDiffusion
    public let tokenizer: any Tokenizer
    /// The OpenAI model id of the language model.
    public let languageModelID: String
    /// The OpenAI model id of the diffusion system (contains "diffusion").
    public let diffusionID: String
    /// When the models were loaded (the `created` of `/v1/models`).
    public let created: Int
    /// The bundle's latent classifier (`classifier/`), whose labels requests may steer towards; nil when it has none.
    public let classifier: LatentClassifier?

    public init(system: LatentDiffusion, tokenizer: any Tokenizer, name: String, classifier: LatentClassifier? = nil) throws {
        guard tokenizer.endOfTextID != nil else { throw ServeLoadError("the tokenizer has no <|endoftext|> token") }
        if let classifier {
            do { try classifier.check(reads: system.autoencoder) } catch let error as LatentClassifierError {
                throw ServeLoadError("classifier/: \(error.message)")
            }
        }
        self.classifier = classifier
        self.system = system
        self.tokenizer = tokenizer
        languageModelID = "\(name)-lm"
        diffusionID = "\(name)-diffusion"
        created = Int(Date().timeIntervalSince1970)
    }

    /// Loads a bundle folder (`lm/`, `autoencoder/`, `diffusion/`, and `classifier/` when there is one) or a diffusion
    /// folder; the ids are named after the bundle's folder.
    public static func load(bundle: URL) throws -> ServedModels {
        let folders = try BundleFolders(resolving: bundle)
        let system = try LatentDiffusion.load(from: folders.diffusion)
        let tokenizer = try loadTokenizer(directory: folders.languageModel)
        var named = folders.diffusion.standardizedFileURL
        if named.lastPathComponent == "diffusion" { named = named.deletingLastPathComponent() }
        let classifierFolder = named.appendingPathComponent("classifier")
        let classifier =
            FileManager.default.fileExists(atPath: classifierFolder.appendingPathComponent("config.json").path)
            ? try LatentClassifier.load(from: classifierFolder) : nil
        return try ServedModels(system: system, tokenizer: tokenizer, name: named.lastPathComponent, classifier: classifier)
    }

    /// The frozen language model inside the autoencoder.
    public var languageModel: GPT { system.autoencoder.languageModel }

    var endOfText: Int { tokenizer.endOfTextID! }

    /// The ids `/v1/models` lists.
    public var ids: [String] { [languageModelID, diffusionID] }
}

/// A bundle that cannot be served.
public struct ServeLoadError: LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var errorDescription: String? { message }
}
