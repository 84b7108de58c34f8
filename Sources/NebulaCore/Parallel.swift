import Foundation
import Synchronization

/// Splits loops over contiguous buffers across the machine's cores.
public enum Parallel {
    /// How many workers a parallel loop started here uses: the current ``ExecutionContext``'s `threads`, at most
    /// ``defaultThreads`` (the pool's size).
    public static var workerCount: Int { min(ExecutionContext.current.threads, WorkerPool.shared.capacity) }

    /// The default of ``ExecutionContext/threads`` and the most any loop uses: `NEBULA_THREADS` when set (e.g. 1
    /// per rank when several MPI ranks share a machine), otherwise the number of active cores.
    public static let defaultThreads = max(
        1,
        ProcessInfo.processInfo.environment["NEBULA_THREADS"].flatMap { Int($0) }
            ?? ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint sub-ranges covering `0..<count`, in parallel when each worker would get at
    /// least `grain` items; otherwise inline on the calling thread.
    @inline(__always)
    public static func forRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let workers = min(workerCount, count / max(grain, 1))
        if workers <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + workers - 1) / workers
        WorkerPool.shared.run(iterations: workers) { w in
            let start = w * chunk
            let end = min(count, start + chunk)
            if start < end { body(start..<end) }
        }
    }

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the workers (for coarse items such as
    /// one attention head each).
    @inline(__always)
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || workerCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        forRanges(count, grain: 1) { range in for i in range { body(i) } }
    }

    /// Maps `0..<count` on `workers` workers (default ``workerCount``). Worker `w` takes items `w`, `w + workers`, …
    /// in order and keeps one `State` (a word cache, say) across its items. Results come back in item order; the
    /// first error thrown (by item order) is rethrown.
    public static func map<State, Result>(
        count: Int,
        workers: Int = workerCount,
        makeState: () -> State,
        _ body: (inout State, Int) throws -> Result
    ) throws -> [Result] {
        let workers = max(1, min(workers, count))
        if workers == 1 {
            var state = makeState()
            return try (0..<count).map { try body(&state, $0) }
        }
        let results = UnsafeMutableBufferPointer<Swift.Result<Result, Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        // Worker `w` writes only the result slots of its items; they are read after every worker has finished.
        WorkerPool.shared.run(iterations: workers) { worker in
            var state = makeState()
            for item in stride(from: worker, to: count, by: workers) {
                results[item] = Swift.Result { try body(&state, item) }
            }
        }
        return try results.map { try $0!.get() }
    }
}

/// The threads behind `Parallel`: `defaultThreads − 1` helpers that join the calling thread on every parallel
/// loop (fork–join, as OpenMP does). Between loops a helper spins for a while before it sleeps, so the many
/// short loops of a training or decoding step do not each pay for waking threads (with libdispatch, a
/// batch-16 decoding step spent a sixth of its time in the kernel doing that).
///
/// One loop runs at a time: a loop started inside another, or from a second thread while one runs, runs
/// inline on its caller. Helpers run each loop under the ``ExecutionContext`` of the thread that started it.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(helpers: Parallel.defaultThreads - 1)

    /// How long an idle helper spins before it sleeps.
    private static let spinNanoseconds: UInt64 = 200_000

    private let helpers: Int
    /// Bumped to start a loop; helpers wait for it to change.
    private let generation = Atomic<Int>(0)
    /// The next iteration to claim, and how many are still running or unclaimed.
    private let nextIteration = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    /// Helpers done with the current loop (the caller waits for all of them before the next one).
    private let helpersDone = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let running = Atomic<Bool>(false)
    // The current loop, written only while every helper is waiting for the next generation.
    private var iterations = 0
    private var body: ((Int) -> Void)?
    private var context = ExecutionContext()
    private let lock = NSCondition()

    /// The most workers a loop can have: the helpers and the calling thread.
    var capacity: Int { helpers + 1 }

    private init(helpers: Int) {
        self.helpers = max(0, helpers)
        for _ in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Calls `body(i)` for every i in `0..<iterations`, on the caller and the helpers; returns when all are done.
    func run(iterations: Int, _ body: (Int) -> Void) {
        guard helpers > 0, running.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<iterations { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            self.iterations = iterations
            self.context = ExecutionContext.current
            nextIteration.store(0, ordering: .relaxed)
            unfinished.store(iterations, ordering: .relaxed)
            helpersDone.store(0, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                lock.lock()
                lock.broadcast()
                lock.unlock()
            }
            work()
            while unfinished.load(ordering: .acquiring) > 0 || helpersDone.load(ordering: .acquiring) < helpers {}
            self.body = nil
        }
        running.store(false, ordering: .releasing)
    }

    /// Claims and runs iterations of the current loop until none are left.
    private func work() {
        while true {
            let i = nextIteration.add(1, ordering: .relaxed).oldValue
            guard i < iterations else { return }
            body!(i)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    private func helperLoop() {
        var seen = 0
        while true {
            let spinStart = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                guard spins & 1023 == 0, DispatchTime.now().uptimeNanoseconds - spinStart > Self.spinNanoseconds else { continue }
                lock.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { lock.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                lock.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            ExecutionContext.$current.withValue(context) { work() }
            helpersDone.add(1, ordering: .releasing)
        }
    }
}
