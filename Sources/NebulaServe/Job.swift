import Foundation

/// A request admitted to the model worker: what to run, where its events go, and when it must end.
/// The worker thread owns the model state; this object only carries what the HTTP side shares with it.
final class Job: @unchecked Sendable {
    let work: GenerationJob
    let deadline: Date
    private let continuation: AsyncStream<JobEvent>.Continuation
    private let lock = NSLock()
    private var _cancelled = false

    init(work: GenerationJob, deadline: Date, continuation: AsyncStream<JobEvent>.Continuation) {
        self.work = work
        self.deadline = deadline
        self.continuation = continuation
    }

    /// True once the client stopped listening (disconnected, or its task was cancelled).
    var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return _cancelled
    }

    func cancel() {
        lock.lock(); _cancelled = true; lock.unlock()
    }

    func send(_ event: JobEvent) { continuation.yield(event) }

    /// Closes the stream without a last event (the client is gone).
    func close() { continuation.finish() }

    /// Sends the last event and closes the stream.
    func finish(_ event: JobEvent) {
        continuation.yield(event)
        continuation.finish()
    }
}
