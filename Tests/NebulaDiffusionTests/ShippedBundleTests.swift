import Foundation
import XCTest
import NebulaModels
import NebulaTensor
import NebulaText
@testable import NebulaDiffusion

/// The TinyStories bundle committed in `models/tinystories` (LM, autoencoder, denoiser, classifier; half precision)
/// loads, fits the size budget, and generates the same passages from the same seed.
final class ShippedBundleTests: XCTestCase {
    let bundle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/tinystories")

    /// 80 MB: the 8 × 384 denoiser alone is 49 MB in half precision (issue #28 chose it under the judges).
    func testBundleFitsInEightyMegabytes() throws {
        let files = FileManager.default.enumerator(at: bundle, includingPropertiesForKeys: [.fileSizeKey])!
        let bytes = try files.compactMap { $0 as? URL }.reduce(0) { $0 + (try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) }
        XCTAssertGreaterThan(bytes, 1_000_000)
        XCTAssertLessThanOrEqual(bytes, 80_000_000)
    }

    /// The bundle samples a few-step loop with more noise than a 50-step one (docs/report/fewstep.md).
    func testBundleRaisesTheNoiseForFewSteps() throws {
        let config = try ModelFolder.readConfig(LatentDiffusionConfig.self, in: bundle.appendingPathComponent("diffusion"))
        let sampling = try XCTUnwrap(config.sampling)
        XCTAssertNil(sampling.validate())
        XCTAssertEqual(sampling.noiseScale(steps: 50), sampling.noiseScale, "50 steps keep the default")
        XCTAssertGreaterThan(sampling.noiseScale(steps: 4)!, sampling.noiseScale(steps: 50)! + 0.5)
    }

    /// The shipped autoencoder carries a passage's words: everyday passages written for the evaluation
    /// (`docs/eval/out_of_domain_passages.txt`, not TinyStories) come back position by position.
    func testAutoencoderReconstructsPassagesItNeverSaw() throws {
        let ae = try LatentAutoencoder.load(from: bundle.appendingPathComponent("autoencoder"))
        let tokenizer = try loadTokenizer(directory: bundle.appendingPathComponent("lm"))
        let file = bundle.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "docs/eval/out_of_domain_passages.txt")
        let passages = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").prefix(16)
            .map { try tokenizer.encode(String($0)).map(Int32.init) }
        var greedy = SeededGenerator(seed: 0)
        let decoded = ae.decode(ae.encode(passages), generator: &greedy)
        var right = 0, total = 0
        for (reference, output) in zip(passages, decoded) {
            total += reference.count
            right += zip(reference, output).filter { Int($0) == $1 }.count
        }
        XCTAssertGreaterThan(Double(right) / Double(total), 0.6, "token accuracy on passages the autoencoder never saw")
    }

    func testGenerationIsDeterministicForASeed() throws {
        let system = try LatentDiffusion.load(from: bundle.appendingPathComponent("diffusion"))
        let tokenizer = try loadTokenizer(directory: bundle.appendingPathComponent("lm"))
        func generate(seed: UInt64) throws -> [String] {
            var generator = SeededGenerator(seed: seed)
            let z = system.sample(count: 2, try system.configuration(for: GenerationRequest(steps: 10)), generator: &generator)  // [2, K, d]
            XCTAssertEqual(z.shape, [2, system.autoencoder.config.latents, system.autoencoder.config.latentWidth])
            var greedy = SeededGenerator(seed: 0)
            return try system.autoencoder.decode(z, generator: &greedy).map { try tokenizer.decode($0) }
        }
        let first = try generate(seed: 11)
        XCTAssertEqual(try generate(seed: 11), first)
        XCTAssertNotEqual(try generate(seed: 12), first)
        for text in first {
            let words = text.split(separator: " ")
            XCTAssertGreaterThan(words.count, 3, "a generated passage should be a sentence or more: \(text)")
        }
    }

    /// The README's library example, as it is printed there (with the bundle's path): two passages of words.
    func testReadmeLibraryExample() throws {
        var printed: [String] = []
        func print(_ text: String) { printed.append(text) }
        // From README.md, "As a library":
        let folders = try BundleFolders(resolving: bundle)
        let system = try LatentDiffusion.load(from: folders.diffusion)
        let tokenizer = try loadTokenizer(directory: folders.languageModel)
        let config = try system.configuration(for: GenerationRequest(steps: 25))  // the bundle's defaults for the rest
        var rng = SeededGenerator(seed: 1)
        let latents = system.sample(count: 2, config, generator: &rng)  // [2, 16, 32]
        for tokens in system.decode(latents, config, generator: &rng) {
            print(try system.autoencoder.passageText(tokens, tokenizer: tokenizer))
        }
        XCTAssertEqual(latents.shape, [2, 16, 32])
        XCTAssertEqual(printed.count, 2)
        XCTAssertTrue(printed.allSatisfy { $0.split(separator: " ").count > 3 }, "\(printed)")
        let readme = try String(
            contentsOf: bundle.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"),
            encoding: .utf8)
        XCTAssertTrue(readme.contains("let latents = system.sample(count: 2, config, generator: &rng)"), "the README shows this example")
    }
}
