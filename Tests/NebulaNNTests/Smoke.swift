import XCTest
@testable import NebulaNN

final class NebulaNNSmokeTests: XCTestCase {
    func testBuilds() { XCTAssertTrue(true) }
}
