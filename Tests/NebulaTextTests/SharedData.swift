import Foundation
import XCTest
@testable import NebulaText

/// The project's shared data folder (`../shared/data` beside the package root), for tests.
enum SharedData {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let folder = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

    /// The URL of `path` in the shared data; skips the test when it is absent, or fails it when
    /// `NEBULA_REQUIRE_SHARED=1`.
    static func url(_ path: String) throws -> URL {
        let url = folder.appendingPathComponent(path)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let message = "shared data \(url.path) is absent"
        if ProcessInfo.processInfo.environment["NEBULA_REQUIRE_SHARED"] == "1" {
            XCTFail(message + " and NEBULA_REQUIRE_SHARED=1")
            throw XCTSkip(message)
        }
        throw XCTSkip(message + " (set up ../shared/data to run this test)")
    }

    /// GPT-2's tokenizer, loaded once.
    static func gpt2() throws -> ByteLevelBPE {
        let directory = try url("gpt2")
        if let cached = cache.value { return cached }
        let tokenizer = try ByteLevelBPE(
            vocabulary: directory.appendingPathComponent("encoder.json"),
            merges: directory.appendingPathComponent("vocab.bpe"))
        cache.value = tokenizer
        return tokenizer
    }

    private final class Box: @unchecked Sendable { var value: ByteLevelBPE? }
    private static let cache = Box()
}

/// A scratch folder, removed after the test.
func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-text-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
