import Foundation
import XCTest
import NebulaModels
import NebulaNN
@testable import NebulaTensor
@testable import NebulaDiffusion

/// The one-pass decoder: started from the autoencoder's parallel decoder, trained on the loop's latents to write the
/// autoregressive decoder's passages, stored beside the denoiser and chosen by a request's `decoder`.
final class OnePassDecoderTests: XCTestCase {
    /// The tiny untrained system, with a 12-token vocabulary (the draft's mask is token 12).
    func tinySystem(generator rng: inout SeededGenerator) -> LatentDiffusion { tinyDiffusionSystem(vocabulary: 12, generator: &rng) }

    func testStartsFromTheAutoencodersParallelDecoder() throws {
        var rng = SeededGenerator(seed: 1)
        let ae = tinySystem(generator: &rng).autoencoder
        let same = OnePassDecoder(
            OnePassDecoderConfig(layers: 1, loopSteps: [4], teacherLanguageModelPrior: 0), autoencoder: ae, generator: &rng)
        let z = Tensor.randn([3, 4, 8], generator: &rng)
        var greedy = SeededGenerator(seed: 0)
        XCTAssertEqual(
            ae.decodeInOnePass(z, by: same.network, generator: &greedy), ae.decode(z, decoder: .parallel, generator: &greedy),
            "the same weights write the same passages")
        let deeper = OnePassDecoder(
            OnePassDecoderConfig(layers: 2, loopSteps: [4], teacherLanguageModelPrior: 0), autoencoder: ae, generator: &rng)
        let source = Dictionary(uniqueKeysWithValues: ae.parallel.namedParameters())
        for (name, weight) in deeper.network.namedParameters() {
            if let start = source[name] {
                XCTAssertEqual(weight.data, start.data, name)
            } else {
                XCTAssertTrue(name.hasPrefix("blocks.1."), "only the extra layer starts fresh: \(name)")
            }
        }
        XCTAssertNil(deeper.draft, "a single pass reads no draft")
        XCTAssertFalse(deeper.network.stateHead.weight.requiresGrad, "the state head is not trained")
    }

    /// Trained on the fused autoregressive decoder's passages of loop latents, the one-pass decoder writes those
    /// passages token for token far more often than the autoencoder's parallel decoder it started from.
    func testDistillationTeachesTheAutoregressiveDecodersPassages() throws {
        var rng = SeededGenerator(seed: 2)
        let system = tinySystem(generator: &rng)
        let config = try system.configuration(for: GenerationRequest(steps: 2))
        XCTAssertEqual(config.decoder, .autoregressive)
        let pairs = DecodedLatents.generate(system, config, count: 24, generator: &rng)
        XCTAssertEqual(pairs.latents.shape, [24, 4, 8])
        XCTAssertEqual(pairs.length, 8)
        var greedy = SeededGenerator(seed: 0)
        let passages = system.decode(pairs.latents, config, generator: &greedy)
        for (b, passage) in passages.enumerated() {  // the targets are those passages, the end of text, then ignored
            let row = Array(pairs.targets[(b * 8)..<((b + 1) * 8)])
            XCTAssertEqual(row.prefix(passage.count).map(Int.init), Array(passage.prefix(8)))
            if passage.count < 8 { XCTAssertEqual(row[passage.count], 0) }
            XCTAssertTrue(row.dropFirst(passage.count + 1).allSatisfy { $0 == -1 })
        }

        for passes in [1, 3] {  // every token at once, and mask-predict
            let decoder = OnePassDecoder(
                OnePassDecoderConfig(layers: 2, passes: passes, loopSteps: [2], teacherLanguageModelPrior: 0),
                autoencoder: system.autoencoder,
                generator: &rng)
            let task = OnePassDistillationTask(decoder: decoder, autoencoder: system.autoencoder, pairs: pairs, validation: pairs)
            let before = task.evaluate(batches: 1, batchSize: 24)
            let summary = try quietTrainer(task, steps: 300, learningRate: 1e-2, batchSize: 8).run()
            XCTAssertNotNil(summary.evaluation["val_exact_passages"])
            let after = task.evaluate(batches: 1, batchSize: 24)
            XCTAssertLessThan(after["val_loss"]!, before["val_loss"]! / 3, "\(passes) passes")
            XCTAssertGreaterThan(after["val_token_accuracy"]!, 0.9, "\(passes) passes: \(before) → \(after)")
            XCTAssertGreaterThan(after["val_token_accuracy"]!, before["val_token_accuracy"]! + 0.3, "\(passes) passes")

            let trained = LatentDiffusion(
                config: system.config, denoiser: system.denoiser, autoencoder: system.autoencoder, onePass: decoder)
            let onePass = try trained.configuration(for: GenerationRequest(steps: 2, decoder: .onePass))
            let written = trained.decode(pairs.latents, onePass, generator: &greedy)
            let same = zip(written, passages).filter { $0 == Array($1.prefix(8)) }.count  // an untrained teacher may not stop at L
            XCTAssertEqual(Double(same) / 24, after["val_exact_passages"]!, accuracy: 1e-9, "decode writes what the evaluation scores")
            XCTAssertGreaterThan(same, 12, "\(passes) passes")
        }
    }

    /// A draft for training shows each passage's tokens (padding beyond its end) except the masked positions, whose
    /// tokens become the only targets; every row has one masked position at least, and the rates vary by row.
    func testTrainingDraftsMaskPositionsAndTargetOnlyThose() throws {
        var rng = SeededGenerator(seed: 5)
        let system = tinySystem(generator: &rng)
        let decoder = OnePassDecoder(
            OnePassDecoderConfig(layers: 1, passes: 4, loopSteps: [2], teacherLanguageModelPrior: 0), autoencoder: system.autoencoder,
            generator: &rng)
        XCTAssertEqual(decoder.maskID, 12, "the row after the vocabulary")
        let row: [Int32] = [3, 4, 5, 0, -1, -1, -1, -1]
        let targets = [Int32]((0..<64).flatMap { _ in row })
        let pairs = DecodedLatents(latents: Tensor.randn([64, 4, 8], generator: &rng), targets: targets)
        let task = OnePassDistillationTask(decoder: decoder, autoencoder: system.autoencoder, pairs: pairs, validation: nil)
        let (draft, masked) = task.maskedDraft(targets, generator: &rng)
        var counts: Set<Int> = []
        for b in 0..<64 {
            var count = 0
            for t in 0..<8 {
                let i = b * 8 + t
                if draft[i] == decoder.maskID {
                    XCTAssertEqual(masked[i], targets[i])
                    count += 1
                } else {
                    XCTAssertEqual(masked[i], -1)
                    XCTAssertEqual(draft[i], targets[i] < 0 ? system.autoencoder.padding : targets[i])
                }
            }
            XCTAssertGreaterThan(count, 0)
            counts.insert(count)
        }
        XCTAssertGreaterThan(counts.count, 4, "mask rates vary from row to row")
    }

    /// Mask-predict holds the length its first pass sets; the frozen LM, fused into the later passes, changes their
    /// words and not that length.
    func testRefinementHoldsTheFirstPassesLength() {
        var rng = SeededGenerator(seed: 6)
        let system = tinySystem(generator: &rng)
        let decoder = OnePassDecoder(
            OnePassDecoderConfig(layers: 1, passes: 4, loopSteps: [2], teacherLanguageModelPrior: 0), autoencoder: system.autoencoder,
            generator: &rng)
        for (_, p) in decoder.namedParameters() { p.data = p.data.map { _ in Float.random(in: -0.5...0.5, using: &rng) } }
        let embedding = system.autoencoder.languageModel.wte.weight  // [V, C]: a loud end of text ends passages anywhere
        embedding.data = embedding.data.enumerated().map { $0.offset < 16 ? Float.random(in: -4...4, using: &rng) : $0.element }
        let z = Tensor.randn([16, 4, 8], generator: &rng)
        var unused = SeededGenerator(seed: 0)
        let first = decoder.decode(z, autoencoder: system.autoencoder, passes: 1, generator: &unused)
        let refined = decoder.decode(z, autoencoder: system.autoencoder, passes: 4, generator: &unused)
        let fused = decoder.decode(z, autoencoder: system.autoencoder, passes: 4, languageModelPrior: 50, generator: &unused)
        XCTAssertEqual(refined.map(\.count), first.map(\.count))
        XCTAssertEqual(fused.map(\.count), first.map(\.count))
        XCTAssertTrue(Set(first.map(\.count)).count > 1, "passages of several lengths: \(first.map(\.count))")
        XCTAssertNotEqual(fused, refined, "the LM's prior changes the refined words")
        XCTAssertEqual(
            decoder.decode(z, autoencoder: system.autoencoder, passes: 1, languageModelPrior: 50, generator: &unused), first,
            "a first pass has no draft for the LM to read")
    }

    /// A one-pass decoder saved as a bundle's `onepass/` comes with the denoiser beside it; a request for it on a
    /// system without one, or a bundle whose defaults name one it lacks, is refused in one line.
    func testBundleLoadsItsOnePassDecoder() throws {
        var rng = SeededGenerator(seed: 3)
        let system = tinySystem(generator: &rng)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-onepass-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        for folder in ["lm", "autoencoder", "diffusion"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try system.autoencoder.languageModel.save(to: root.appendingPathComponent("lm"))
        var aeConfig = system.autoencoder.config
        aeConfig.languageModel = "../lm"
        try ModelFolder.writeConfig(aeConfig, in: root.appendingPathComponent("autoencoder"))
        try system.autoencoder.save(safetensors: root.appendingPathComponent("autoencoder/model.safetensors"))
        var config = system.config
        config.sampling = SamplingDefaults(languageModelPrior: 1.5, decoder: .onePass)
        try ModelFolder.writeConfig(config, in: root.appendingPathComponent("diffusion"))
        try system.denoiser.save(safetensors: root.appendingPathComponent("diffusion/model.safetensors"))
        XCTAssertThrowsError(try LatentDiffusion.load(from: root.appendingPathComponent("diffusion"))) {
            XCTAssertTrue(
                "\($0.localizedDescription)".hasSuffix(
                    "sampling.decoder is one-pass, but there is no one-pass decoder (onepass/) beside this folder"), "\($0)")
        }
        XCTAssertThrowsError(try system.configuration(for: GenerationRequest(decoder: .onePass))) {
            XCTAssertEqual("\($0)", "decoder one-pass needs a bundle with a one-pass decoder (onepass/); this one has none")
        }

        let decoder = OnePassDecoder(
            OnePassDecoderConfig(layers: 2, passes: 3, loopSteps: [4, 8], teacherLanguageModelPrior: 1.5), autoencoder: system.autoencoder,
            generator: &rng)
        for (_, p) in decoder.namedParameters() { p.data = p.data.map { _ in Float.random(in: -0.2...0.2, using: &rng) } }
        try decoder.save(to: root.appendingPathComponent("onepass"))
        XCTAssertEqual(try BundleFolders(resolving: root).onePass?.lastPathComponent, "onepass")
        let loaded = try LatentDiffusion.load(from: root.appendingPathComponent("diffusion"))
        let onePass = try XCTUnwrap(loaded.onePass)
        XCTAssertEqual(onePass.config, decoder.config)
        XCTAssertEqual(loaded.decoders, [.autoregressive, .parallel, .onePass])
        let resolved = try loaded.configuration(for: GenerationRequest(steps: 4))
        XCTAssertEqual(resolved.decoder, .onePass, "the bundle's default")
        XCTAssertEqual(try loaded.configuration(for: GenerationRequest(decoder: .parallel)).decoder, .parallel, "the request wins")
        XCTAssertEqual(resolved.languageModelPrior, 0, "the bundle's LM prior is the autoregressive decoder's")
        XCTAssertEqual(try loaded.configuration(for: GenerationRequest(languageModelPrior: 0.3)).languageModelPrior, 0.3)
        XCTAssertEqual(try loaded.configuration(for: GenerationRequest(decoder: .autoregressive)).languageModelPrior, 1.5)
        let z = Tensor.randn([2, 4, 8], generator: &rng)
        var greedy = SeededGenerator(seed: 0)
        XCTAssertEqual(
            loaded.decode(z, resolved, generator: &greedy), decoder.decode(z, autoencoder: system.autoencoder, generator: &greedy))
    }

    /// Pairs survive a round trip through their file; a file that holds anything else is refused, naming it.
    func testPairsFileRoundTripsAndRefusesOtherFiles() throws {
        var rng = SeededGenerator(seed: 4)
        let pairs = DecodedLatents(latents: Tensor.randn([3, 4, 8], generator: &rng), targets: [Int32]((0..<24).map { $0 % 5 - 1 }))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-pairs-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("pairs.safetensors")
        try pairs.write(to: url, metadata: ["seed": "1"])
        let file = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(file.metadata["seed"], "1")
        let read = try DecodedLatents.read(from: file)
        XCTAssertEqual(read.latents.data, pairs.latents.data)
        XCTAssertEqual(read.targets, pairs.targets)
        XCTAssertEqual(read.rows([2, 0]).targets, Array(pairs.targets[16..<24] + pairs.targets[0..<8]))

        let flat = folder.appendingPathComponent("flat.safetensors")
        try writeSafeTensors(
            [
                SafeTensorsEntry(name: "latents", shape: [3, 32], floats: pairs.latents.data),
                SafeTensorsEntry(name: "targets", shape: [3, 8], integers: pairs.targets.map(Int.init), dtype: .i32)
            ], to: flat)
        XCTAssertThrowsError(try DecodedLatents.read(from: SafeTensorsFile(contentsOf: flat))) {
            XCTAssertTrue(
                "\($0.localizedDescription)".contains("expected latents [N, K, d] and targets [N, L], got latents [3, 32]"), "\($0)")
        }
        let missing = folder.appendingPathComponent("missing.safetensors")
        try writeSafeTensors([SafeTensorsEntry(name: "latents", shape: [3, 4, 8], floats: pairs.latents.data)], to: missing)
        XCTAssertThrowsError(try DecodedLatents.read(from: SafeTensorsFile(contentsOf: missing)))
    }
}
