import Foundation
import NebulaModels
import XCTest

extension XCTestCase {
    /// A trainer for a test: no progress bar, a cosine schedule down to a tenth of `learningRate`, no weight decay,
    /// one evaluation (`evalBatches` batches) and one checkpoint at the end, in a temporary folder (`directory`)
    /// removed after the test.
    func quietTrainer(
        _ task: TrainingTask, steps: Int, learningRate: Float, batchSize: Int, warmup: Int = 20, evalBatches: Int = 1
    ) -> Trainer {
        var options = TrainingOptions()
        (options.batchSize, options.steps, options.learningRate, options.minLearningRate) = (
            batchSize, steps, learningRate, learningRate / 10
        )
        (options.warmupSteps, options.evalEvery, options.checkpointEvery, options.evalBatches, options.weightDecay) = (
            warmup, steps, steps, evalBatches, 0
        )
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-test-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(task: task, options: options, directory: folder)
        trainer.showProgress = false
        return trainer
    }
}
