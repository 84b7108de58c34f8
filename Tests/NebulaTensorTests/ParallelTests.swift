import Foundation
import XCTest
@testable import NebulaTensor

final class ParallelTests: XCTestCase {
    /// Every index is visited exactly once: loops of every size, loops inside loops (run inline), and loops
    /// started from several threads at once (one uses the helpers, the others run inline).
    func testEveryIterationRunsOnceWhateverTheNestingAndCallers() {
        for count in [0, 1, 2, 3, 17, 1000] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                let h = h
                Parallel.forRanges(count, grain: 1) { range in for i in range { h[i] += 1 } }
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: count), "count \(count)")
        }
        var grid = [Int](repeating: 0, count: 64 * 64)
        grid.withUnsafeMutableBufferPointer { g in
            let g = g
            Parallel.forEach(64) { i in Parallel.forRanges(64, grain: 1) { range in for j in range { g[i * 64 + j] += 1 } } }
        }
        XCTAssertEqual(grid, [Int](repeating: 1, count: 64 * 64))
        let callers = 4, loops = 300
        // Unchecked, and safe: caller c writes only sums[c]; they are read after every caller has finished.
        nonisolated(unsafe) let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<loops {
                let partial = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8)
                partial.initialize(repeating: 0)
                Parallel.forRanges(8, grain: 1) { range in for i in range { partial[i] = i + 1 } }
                sums[caller] += partial.reduce(0, +)
                partial.deallocate()
            }
        }
        XCTAssertEqual(Array(sums), [Int](repeating: loops * 36, count: callers))
    }

    /// A loop's helpers run under the context of the thread that started it, and a context's `threads` bounds the
    /// workers; outside any binding the defaults apply.
    func testWorkersRunUnderTheCallersExecutionContext() {
        XCTAssertEqual(ExecutionContext.current, ExecutionContext())
        let context = ExecutionContext(threads: 2, precision: .bf16, gemmBackend: .openblas)
        let count = 256
        // Unchecked, and safe: iteration i writes only seen[i]; read after the loop has finished.
        nonisolated(unsafe) let seen = UnsafeMutableBufferPointer<ExecutionContext>.allocate(capacity: count)
        defer { seen.deallocate() }
        seen.initialize(repeating: ExecutionContext())
        context.run {
            Parallel.forEach(count) { i in
                for _ in 0..<1_000 where i % 7 == 0 { _ = ExecutionContext.current }  // uneven work, so helpers claim some
                seen[i] = ExecutionContext.current
            }
        }
        XCTAssertEqual(Array(seen), [ExecutionContext](repeating: context, count: count))
        XCTAssertEqual(ExecutionContext(threads: 1).run { Parallel.workerCount }, 1)
        XCTAssertEqual(ExecutionContext(threads: 10_000).run { Parallel.workerCount }, Parallel.defaultThreads)
    }

    /// `Parallel.map` returns results in item order for any number of workers, keeps one state per worker, and
    /// rethrows the first error by item order.
    func testMapKeepsItemOrderAndRethrowsTheFirstError() throws {
        struct Failure: Error, Equatable { let item: Int }
        for workers in [1, 2, 3, 8] {
            let squares = try Parallel.map(count: 100, workers: workers, makeState: { 0 }) { calls, i -> Int in
                calls += 1
                return i * i
            }
            XCTAssertEqual(squares, (0..<100).map { $0 * $0 }, "\(workers) workers")
            XCTAssertThrowsError(
                try Parallel.map(count: 50, workers: workers, makeState: {}) { _, i -> Int in
                    if i == 17 || i == 40 { throw Failure(item: i) }
                    return i
                }
            ) { XCTAssertEqual($0 as? Failure, Failure(item: 17)) }
        }
    }
}
