import Foundation
import XCTest
import NebulaTensor
@testable import NebulaEval

final class MAUVESpeedTests: XCTestCase {
    /// 1000 + 1000 vectors of dimension 384: about 0.3 s in a release build on 2 cores (debug: a few s).
    func testThousandsOfVectorsTakeSeconds() {
        var rng = SeededGenerator(seed: 9)
        let d = 384
        let centre = (0..<d).map { _ in 2 * rng.nextGaussian() }
        let human = (0..<1000).map { _ in centre.map { $0 + rng.nextGaussian() } }
        let model = (0..<1000).map { _ in centre.map { $0 + rng.nextGaussian() } }
        let start = Date()
        let m = MAUVE(human: human, model: model)
        let seconds = Date().timeIntervalSince(start)
        print("MAUVE 1000 + 1000 × \(d): \(m.score) in \(seconds) s")
        XCTAssertEqual(m.p.count, 100)
        XCTAssertGreaterThan(m.score, 0.8, "one distribution")
        XCTAssertLessThan(seconds, 30)
    }
}
