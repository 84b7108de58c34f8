import Foundation
import NebulaModels

/// The three folders of a model bundle: the denoiser, the autoencoder its config names, and the language
/// model the autoencoder's config names (each config holds the next folder as a relative path); and the
/// bundle's distilled denoisers, if any (`distilled/N-steps/`, each for N steps), and its one-pass decoder (`onepass/`).
///
/// ```swift
/// let folders = try BundleFolders(resolving: URL(fileURLWithPath: "models/tinystories"))
/// let system = try LatentDiffusion.load(from: folders.diffusion)
/// let tokenizer = try loadTokenizer(directory: folders.languageModel)
/// ```
public struct BundleFolders: Sendable {
    public let diffusion: URL
    public let autoencoder: URL
    public let languageModel: URL
    /// Distilled denoiser folders by the step count they were distilled for.
    public let distilled: [Int: URL]
    /// The one-pass decoder folder, if the bundle has one.
    public let onePass: URL?

    /// `folder` is a bundle (holding `diffusion/`) or a diffusion folder itself.
    public init(resolving folder: URL) throws {
        var folder = folder
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("diffusion/config.json").path) {
            folder = folder.appendingPathComponent("diffusion")
        }
        let config = try ModelFolder.readConfig(LatentDiffusionConfig.self, in: folder)
        let aeFolder = ModelFolder.resolve(config.autoencoder, from: folder)
        let aeConfig = try ModelFolder.readConfig(AutoencoderConfig.self, in: aeFolder)
        diffusion = folder
        autoencoder = aeFolder
        languageModel = ModelFolder.resolve(aeConfig.languageModel, from: aeFolder)
        let root = folder.deletingLastPathComponent().appendingPathComponent("distilled")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        distilled = Dictionary(
            uniqueKeysWithValues: names.compactMap { name -> (Int, URL)? in
                guard name.hasSuffix("-steps"), let steps = Int(name.dropLast(6)),
                    FileManager.default.fileExists(atPath: root.appendingPathComponent(name).appendingPathComponent("config.json").path)
                else { return nil }
                return (steps, root.appendingPathComponent(name))
            })
        onePass = Self.onePass(beside: folder)
    }

    /// The one-pass decoder folder of the bundle whose diffusion folder is `diffusion` (`onepass/` beside it), if
    /// it holds a config.
    public static func onePass(beside diffusion: URL) -> URL? {
        let folder = diffusion.deletingLastPathComponent().appendingPathComponent("onepass")
        return FileManager.default.fileExists(atPath: folder.appendingPathComponent(ModelFolder.config).path) ? folder : nil
    }
}
