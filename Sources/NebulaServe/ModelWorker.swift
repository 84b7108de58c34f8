import Foundation
import Logging
import NebulaTensor

/// The one place the models run: a dedicated thread that admits waiting jobs and advances all of them
/// together, a step at a time — every diffusion job in one batched denoiser pass, every language-model
/// sequence in one batched decoding pass — so concurrent requests share the work instead of queueing.
///
/// The queue is bounded: `submit` throws a 503 error once `configuration.queueCapacity` jobs are waiting or running. A job
/// past its deadline fails with 504; a job whose client went away is dropped at the next step.
///
/// ```swift
/// let worker = ModelWorker(models: models, configuration: configuration)
/// worker.start()
/// for await event in try worker.submit(.diffusion(parameters)) { … }
/// ```
public final class ModelWorker: @unchecked Sendable {
    let models: ServedModels
    let configuration: ServeConfiguration
    let logger: Logger
    private let condition = NSCondition()
    // Shared with the HTTP side, under `condition`:
    private var waiting: [Job] = []
    private var admitted = 0
    private var stopping = false
    private var peak = (languageModel: 0, diffusion: 0)
    private var thread: Thread?
    // The worker thread's own:
    private var languageModelRuns: [LanguageModelRun] = []
    private var diffusionRuns: [DiffusionRun] = []

    public init(models: ServedModels, configuration: ServeConfiguration, logger: Logger = Logger(label: "nebula.serve.worker")) {
        self.models = models
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the worker thread; it runs the models in the caller's ``ExecutionContext``.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil else { return }
        let context = ExecutionContext.current
        let thread = Thread { [self] in context.run { self.run() } }
        thread.name = "nebula-model-worker"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Refuses new jobs; the thread exits once the admitted ones are done.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Jobs waiting or running.
    public var load: Int {
        condition.lock(); defer { condition.unlock() }
        return admitted
    }

    /// The most jobs of each model advanced in one batched step so far (how much batching happened).
    public var peakBatch: (languageModel: Int, diffusion: Int) {
        condition.lock(); defer { condition.unlock() }
        return peak
    }

    /// Queues a job; its events arrive on the returned stream. Ending the stream early cancels the job.
    public func submit(_ work: GenerationJob) throws -> AsyncStream<JobEvent> {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: .unbounded)
        let job = Job(work: work, deadline: Date().addingTimeInterval(configuration.requestTimeout), continuation: continuation)
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw ServeError.shuttingDown }
        guard admitted < configuration.queueCapacity else {
            throw ServeError.busy(capacity: configuration.queueCapacity, retryAfter: configuration.retryAfterSeconds)
        }
        continuation.onTermination = { [weak job] termination in
            if case .cancelled = termination { job?.cancel() }
        }
        admitted += 1
        waiting.append(job)
        condition.signal()
        return stream
    }

    private func run() {
        let languageModel = LanguageModelBatcher(lm: models.languageModel, tokenizer: models.tokenizer, endOfText: models.endOfText)
        let diffusion = DiffusionBatcher(system: models.system, tokenizer: models.tokenizer, classifier: models.classifier)
        while true {
            condition.lock()
            while waiting.isEmpty && languageModelRuns.isEmpty && diffusionRuns.isEmpty && !stopping { condition.wait() }
            if stopping && waiting.isEmpty && languageModelRuns.isEmpty && diffusionRuns.isEmpty {
                condition.unlock()
                return
            }
            let newJobs = waiting
            waiting.removeAll()
            condition.unlock()

            var stepped = (languageModel: 0, diffusion: 0)
            withNoGrad {
                for job in newJobs {
                    if job.isCancelled {
                        retire(job, nil)
                        continue
                    }
                    do {
                        switch job.work {
                        case .languageModel(let parameters): languageModelRuns.append(try languageModel.admit(job, parameters))
                        case .diffusion(let parameters): diffusionRuns.append(try diffusion.admit(job, parameters))
                        }
                    } catch {
                        retire(
                            job,
                            .failed(
                                error as? ServeError ?? ServeError(status: .internalServerError, message: "\(error)", type: "server_error"))
                        )
                    }
                }
                dropExpired()
                stepped = (languageModelRuns.count, diffusionRuns.count)
                if !diffusionRuns.isEmpty { diffusion.step(diffusionRuns) }
                if !languageModelRuns.isEmpty { languageModel.step(languageModelRuns) }
                let finished = diffusionRuns.filter(\.isDone)
                if !finished.isEmpty {
                    for (run, choices) in zip(finished, diffusion.completed(finished)) {
                        retire(run.job, .finished(choices: choices, promptTokens: run.promptTokens))
                    }
                }
                for run in languageModelRuns where run.isDone {
                    retire(run.job, .finished(choices: languageModel.completed(run), promptTokens: run.promptTokens))
                }
                diffusionRuns.removeAll { $0.isDone }
                languageModelRuns.removeAll { $0.isDone }
            }
            condition.lock()
            peak = (max(peak.languageModel, stepped.languageModel), max(peak.diffusion, stepped.diffusion))
            condition.unlock()
        }
    }

    /// Drops jobs whose client left, and fails those past their deadline.
    private func dropExpired() {
        let now = Date()
        func expired(_ job: Job) -> Bool {
            if job.isCancelled {
                retire(job, nil)
                return true
            }
            if now > job.deadline {
                retire(job, .failed(.timedOut(seconds: configuration.requestTimeout)))
                return true
            }
            return false
        }
        diffusionRuns.removeAll { expired($0.job) }
        languageModelRuns.removeAll { expired($0.job) }
    }

    /// Takes a job off the count, then sends its last event (so a client holding its answer sees the lower load).
    private func retire(_ job: Job, _ event: JobEvent?) {
        condition.lock()
        admitted -= 1
        condition.unlock()
        if let event { job.finish(event) } else { job.close() }
    }
}
