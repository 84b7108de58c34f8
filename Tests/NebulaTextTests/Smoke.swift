import XCTest
@testable import NebulaText

final class NebulaTextSmokeTests: XCTestCase {
    func testBuilds() { XCTAssertTrue(true) }
}
