import Foundation
import XCTest
@testable import NebulaServe

/// The read-only endpoints: health, the model list, the playground page.
final class EndpointTests: XCTestCase {
    func testHealthAnswersOK() async throws {
        let live = try await TestServers.main.value
        let answer = try await send(.GET, live.base, "/health")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers.first(name: "Content-Type"), "application/json")
        XCTAssertEqual(try answer.json["status"] as? String, "ok")
    }

    func testModelsListsTheLanguageModelAndTheDiffusionSystem() async throws {
        let live = try await TestServers.main.value
        let answer = try await send(.GET, live.base, "/v1/models")
        XCTAssertEqual(answer.status, 200)
        let json = try answer.json
        XCTAssertEqual(json["object"] as? String, "list")
        let data = try XCTUnwrap(json["data"] as? [[String: Any]])
        let ids = data.compactMap { $0["id"] as? String }
        XCTAssertEqual(ids, ["tinystories-lm", "tinystories-diffusion"])
        XCTAssertEqual(ids.filter { $0.contains("diffusion") }.count, 1)
        for model in data {
            XCTAssertEqual(model["object"] as? String, "model")
            XCTAssertNotNil(model["created"] as? Int)
        }
        // The diffusion model lists the labels of the bundle's classifier (what `label` may name); the LM none.
        XCTAssertEqual(data[1]["labels"] as? [String], ["dialogue", "narration"])
        XCTAssertNil(data[0]["labels"])
    }

    func testPlaygroundIsOneSelfContainedPage() async throws {
        let live = try await TestServers.main.value
        let answer = try await send(.GET, live.base, "/")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers.first(name: "Content-Type"), "text/html; charset=utf-8")
        for part in [
            "<textarea id=\"prompt\"", "id=\"model\"", "id=\"steps\"", "id=\"guidance\"", "id=\"label\"", "request.label", "id=\"suffix\"",
            "request.suffix",
            "id=\"temperature\"",
            "/v1/completions", "/v1/models", "getReader", "stream: true", "choice.estimate", "</html>"
        ] {
            XCTAssertTrue(answer.body.contains(part), "the playground lacks \(part)")
        }
        // Nothing is fetched from elsewhere: no external scripts, styles or fonts.
        XCTAssertFalse(answer.body.contains("http://"))
        XCTAssertFalse(answer.body.contains("https://"))
    }
}
