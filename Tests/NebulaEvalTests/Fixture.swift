import Foundation
import XCTest

/// Reads a JSON fixture written by a script in `reference/eval/`.
func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    let url = try XCTUnwrap(
        Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
        "missing Fixtures/\(name).json")
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}
