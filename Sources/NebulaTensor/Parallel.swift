import Dispatch
import Foundation

/// Splits loops over contiguous buffers across the machine's cores.
public enum Parallel {
    /// How many workers a parallel loop uses: `NEBULA_THREADS` when set (e.g. 1 per rank when several MPI
    /// ranks share a machine), otherwise the number of active cores.
    nonisolated(unsafe) public static var workerCount = max(1, ProcessInfo.processInfo.environment["NEBULA_THREADS"].flatMap { Int($0) }
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
        DispatchQueue.concurrentPerform(iterations: workers) { w in
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
}

/// Elementwise loops parallelize above this many elements (below it, thread start-up costs more).
let elementwiseGrain = 1 << 15
