import Foundation
import XCTest
import NebulaNN
import NebulaTensor
@testable import NebulaModels

final class TrainerTests: XCTestCase {
    var directory: URL!
    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-train-\(UUID().uuidString)")
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    let config = GPTConfig(vocabSize: 12, contextLength: 8, layers: 1, heads: 2, width: 16)
    var tokens: [Int32] { (0..<400).map { Int32(($0 * 7 + $0 / 5) % 12) } }

    func makeTrainer(steps: Int, in folder: URL) -> Trainer {
        var options = TrainingOptions()
        options.batchSize = 4
        options.steps = steps
        options.warmupSteps = 2
        options.evalEvery = 3
        options.evalBatches = 2
        options.checkpointEvery = 100
        options.learningRate = 3e-3
        var rng = SeededGenerator(seed: 9)
        let task = LanguageModelTask(model: GPT(config, generator: &rng), train: tokens, validation: tokens)
        let trainer = Trainer(task: task, options: options, directory: folder)
        trainer.showProgress = false
        return trainer
    }

    /// A run of 2N steps and a run of N steps resumed for N more give identical losses and weights.
    func testResumeIsExact() throws {
        let straight = try makeTrainer(steps: 8, in: directory.appendingPathComponent("a")).run()

        let folder = directory.appendingPathComponent("b")
        let first = makeTrainer(steps: 8, in: folder)
        first.stopAfterSteps = 4  // as if interrupted after step 4
        let partial = try first.run()
        XCTAssertTrue(partial.interrupted)
        let resumed = try makeTrainer(steps: 8, in: folder).run(resume: true)

        XCTAssertEqual(partial.losses + resumed.losses, straight.losses)
        let a = try GPT.load(from: directory.appendingPathComponent("a")), b = try GPT.load(from: folder)
        for ((name, p), (_, q)) in zip(a.namedParameters(), b.namedParameters()) { XCTAssertEqual(p.data, q.data, name) }
        let log = try MetricsLog.read(folder.appendingPathComponent(ModelFolder.log))
        XCTAssertEqual(log.map { $0["step"]! }, (1...8).map(Double.init), "the resumed log continues the first")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(ModelFolder.plot).path))
    }

    /// A stop request (what Ctrl-C is on the command line) ends the run after the step it came in, with a
    /// checkpoint that a resumed run continues exactly.
    func testStopRequestEndsTheRunWithACheckpoint() throws {
        let straight = try makeTrainer(steps: 6, in: directory.appendingPathComponent("a")).run()
        let folder = directory.appendingPathComponent("b")
        let first = makeTrainer(steps: 6, in: folder)
        var asked = 0
        first.stopRequested = {
            asked += 1; return asked == 3
        }
        let partial = try first.run()
        XCTAssertTrue(partial.interrupted)
        XCTAssertEqual(partial.stepsDone, 3)
        XCTAssertEqual(asked, 3, "asked once a step, and not after the stop")
        let resumed = try makeTrainer(steps: 6, in: folder).run(resume: true)
        XCTAssertFalse(resumed.interrupted)
        XCTAssertEqual(partial.losses + resumed.losses, straight.losses)
    }

    /// A process killed after writing the model files of step 6 but before its training state, with steps 5–7
    /// logged and a torn line: the resume starts from the state's step 4 (its own weights, not the newer
    /// model file), cuts the log back to step 4, and ends as an uninterrupted run.
    func testResumeUsesTheTrainingStateWhateverTheModelFileAndLogHold() throws {
        let straight = try makeTrainer(steps: 8, in: directory.appendingPathComponent("a")).run()
        let folder = directory.appendingPathComponent("b")
        let first = makeTrainer(steps: 8, in: folder)
        first.stopAfterSteps = 4
        try first.run()

        let gpt = try GPT.load(from: folder)  // a newer model file: other weights
        for (_, parameter) in gpt.namedParameters() { parameter.assign(parameter.data.map { $0 + 0.5 }) }
        try gpt.save(to: folder)
        let log = try FileHandle(forWritingTo: folder.appendingPathComponent(ModelFolder.log))
        log.seekToEndOfFile()
        log.write(Data("{\"step\":5,\"train_loss\":1}\n{\"step\":6,\"train_loss\":1}\n{\"step\":7,\"tra".utf8))
        try log.close()
        try Data("half a checkpoint".utf8).write(to: folder.appendingPathComponent(".training_state.safetensors.X.tmp"))

        let resumed = try makeTrainer(steps: 8, in: folder).run(resume: true)
        XCTAssertEqual(resumed.losses, Array(straight.losses.suffix(4)))
        XCTAssertEqual(
            try Data(contentsOf: folder.appendingPathComponent(ModelFolder.weights)),
            try Data(contentsOf: directory.appendingPathComponent("a/\(ModelFolder.weights)")))
        let steps = try MetricsLog.read(folder.appendingPathComponent(ModelFolder.log)).map { $0["step"]! }
        XCTAssertEqual(steps, (1...8).map(Double.init))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: folder.path).contains { $0.hasSuffix(".tmp") })
    }

    /// A write that fails (here: into a folder that is gone) names the file and leaves nothing behind; a
    /// successful one replaces the file whole.
    func testDurableWritesReplaceWholeFilesOrNothing() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent("state.json")
        try DurableFile.write(Data("old".utf8), to: url)
        XCTAssertThrowsError(
            try DurableFile.write(to: url) { file in
                try file.append(Data("new, half".utf8))
                throw FileWriteError(path: url.path, reason: "simulated failure")
            })
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["state.json"])
        let missing = directory.appendingPathComponent("gone/state.json")
        XCTAssertThrowsError(try DurableFile.write(Data("x".utf8), to: missing)) {
            XCTAssertEqual($0.localizedDescription, "\(missing.path): cannot write (No such file or directory)")
        }
        try DurableFile.write(Data("new".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "new")
    }

    func testBrokenModelFolderGivesOneLineErrors() throws {
        let folder = directory.appendingPathComponent("broken")
        try makeTrainer(steps: 1, in: folder).run()
        let weights = folder.appendingPathComponent(ModelFolder.weights)
        let config = folder.appendingPathComponent(ModelFolder.config)
        let goodConfig = try Data(contentsOf: config)

        try Data(try Data(contentsOf: weights).prefix(100)).write(to: weights)  // truncated weights
        assertOneLineError(try GPT.load(from: folder), mentions: "model.safetensors")

        try Data("{\"vocab_size\": 12".utf8).write(to: config)  // malformed config
        assertOneLineError(try GPT.load(from: folder), mentions: "config.json")

        var json = try JSONSerialization.jsonObject(with: goodConfig) as! [String: Any]
        json["n_embd"] = 32  // config ≠ weights
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        try (makeTrainer(steps: 1, in: directory.appendingPathComponent("fresh")).task.trainable as! GPT).save(safetensors: weights)
        assertOneLineError(try GPT.load(from: folder), mentions: "shape mismatch")

        try FileManager.default.removeItem(at: config)  // missing config
        assertOneLineError(try GPT.load(from: folder), mentions: "config.json")
    }

    func assertOneLineError<T>(_ body: @autoclosure () throws -> T, mentions: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            let message = error.localizedDescription
            XCTAssertFalse(message.contains("\n"), message, line: line)
            XCTAssertTrue(message.contains(mentions), message, line: line)
        }
    }
}
