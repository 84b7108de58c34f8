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
}
