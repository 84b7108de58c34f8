import XCTest
@testable import NebulaTensor

final class NebulaTensorSmokeTests: XCTestCase {
    func testBuilds() { XCTAssertTrue(true) }
}
