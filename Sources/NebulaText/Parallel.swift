import Foundation

/// Maps `0..<count` on `workers` threads. Worker `w` takes items `w`, `w + workers`, … in order and
/// keeps one `State` (a word cache, say) across its items. Results come back in item order; the
/// first error thrown (by item order) is rethrown.
func parallelMap<State, Result>(
    count: Int,
    workers: Int = ProcessInfo.processInfo.activeProcessorCount,
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
    withoutActuallyEscaping(makeState) { makeState in
        withoutActuallyEscaping(body) { body in
            let work = SharedWork(makeState: makeState, body: body, results: results)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var state = work.makeState()
                for item in stride(from: worker, to: count, by: workers) {
                    work.results[item] = Swift.Result { try work.body(&state, item) }
                }
            }
        }
    }
    return try results.map { try $0!.get() }
}

/// What `parallelMap`'s workers share. Unchecked, and safe as `parallelMap`'s contract makes it: the workers
/// call the closures at the same time, each with its own `State` (the callers' closures read shared data and
/// write only that state), and worker `w` writes only the result slots of its items `w, w + workers, …`, read
/// after every worker has finished.
private struct SharedWork<State, Result>: @unchecked Sendable {
    let makeState: () -> State
    let body: (inout State, Int) throws -> Result
    let results: UnsafeMutableBufferPointer<Swift.Result<Result, Error>?>
}
