import Foundation

/// Reads a JSON fixture written by a script in `reference/eval/`.
func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    let url = try XCTUnwrapURL(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"), name)
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

private func XCTUnwrapURL(_ url: URL?, _ name: String) throws -> URL {
    guard let url else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "Fixtures/\(name).json"]) }
    return url
}
