import XCTest
@testable import NebulaModels

final class NebulaModelsSmokeTests: XCTestCase {
    func testBuilds() { XCTAssertTrue(true) }
}
