import Foundation
import NIOHTTP1
import XCTest
@testable import NebulaServe

/// Every way a request can be wrong gets an OpenAI-style error with the right status, never a crash.
final class ErrorTests: XCTestCase {
    func post(_ body: String, to base: String? = nil) async throws -> Answer {
        let target: String
        if let base { target = base } else { target = try await TestServers.main.value.base }
        return try await send(.POST, target, "/v1/completions", body: body)
    }

    func assertInvalid(_ fields: [String: Any], param: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line)
        async throws
    {
        let answer = try await post(jsonBody(fields))
        XCTAssertEqual(answer.status, 400, answer.body, file: file, line: line)
        let error = try answer.error
        XCTAssertEqual(error["param"] as? String, param, answer.body, file: file, line: line)
        XCTAssertEqual(error["type"] as? String, "invalid_request_error", file: file, line: line)
        XCTAssertTrue((error["message"] as? String ?? "").contains(fragment), "\(answer.body) lacks \(fragment)", file: file, line: line)
    }

    func testMalformedJSONIs400() async throws {
        for body in ["{\"model\": \"tinystories-lm\", \"prompt\": ", "not json at all", "[1, 2, 3]"] {
            let answer = try await post(body)
            XCTAssertEqual(answer.status, 400, body)
            let error = try answer.error
            XCTAssertEqual(error["code"] as? String, "invalid_json", answer.body)
            XCTAssertTrue(error["param"] is NSNull)
        }
    }

    func testWrongTypesAre400NamingTheField() async throws {
        try await assertInvalid(["model": "tinystories-lm", "max_tokens": "ten"], param: "max_tokens", "an integer")
        try await assertInvalid(["model": "tinystories-lm", "temperature": "hot"], param: "temperature", "a number")
        try await assertInvalid(["model": "tinystories-lm", "stream": "yes"], param: "stream", "a boolean")
        try await assertInvalid(["model": "tinystories-lm", "prompt": 7], param: "prompt", "a string or a list of strings")
        try await assertInvalid(["model": "tinystories-lm", "prompt": [String]()], param: "prompt", "empty list")
        try await assertInvalid(["model": "tinystories-lm", "prompt": ["a", "b"], "stream": true], param: "prompt", "one prompt")
        try await assertInvalid(["model": "tinystories-diffusion", "steps": 2.5], param: "steps", "steps")
        try await assertInvalid(["model": 3], param: "model", "a string")
        try await assertInvalid(["prompt": "hi"], param: "model", "required")
        try await assertInvalid(["model": "tinystories-lm", "seed": -1], param: "seed", "seed")
    }

    func testOutOfRangeValuesAre400() async throws {
        try await assertInvalid(["model": "tinystories-lm", "top_p": 0], param: "top_p", "(0, 1]")
        try await assertInvalid(["model": "tinystories-diffusion", "sampler": "euler"], param: "sampler", "ddpm, ddim")
        try await assertInvalid(["model": "tinystories-lm", "steps": 10], param: "steps", "diffusion model only")
        try await assertInvalid(["model": "tinystories-lm", "decoder": "parallel"], param: "decoder", "diffusion model only")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "decoder": "beam"], param: "decoder", "autoregressive, parallel, one-pass, got 'beam'")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "decoder": "one-pass"], param: "decoder", "needs a bundle with a one-pass decoder")
        try await assertInvalid(["model": "tinystories-lm", "noise_scale": 0.8], param: "noise_scale", "diffusion model only")
        try await assertInvalid(["model": "tinystories-diffusion", "noise_scale": 5], param: "noise_scale", "[0, 4]")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "sampler": "ddim", "noise_scale": 1.5], param: "noise_scale", "ddim draws no noise")
        try await assertInvalid(
            ["model": "tinystories-lm", "renormalize_estimates": false], param: "renormalize_estimates", "diffusion model only")
        try await assertInvalid(["model": "tinystories-lm", "lm_prior": 0.5], param: "lm_prior", "diffusion model only")
        try await assertInvalid(["model": "tinystories-diffusion", "lm_prior": -1], param: "lm_prior", "[0, 16]")
        try await assertInvalid(["model": "tinystories-lm", "n": 0], param: "n", "at least 1")
        try await assertInvalid(["model": "tinystories-lm", "suffix": "The end."], param: "suffix", "diffusion model only")
        try await assertInvalid(["model": "tinystories-diffusion", "suffix": " "], param: "suffix", "must not be empty")
        let infill: [String: Any] = ["model": "tinystories-diffusion", "prompt": "Tom ran.", "suffix": "The end."]
        try await assertInvalid(infill.merging(["best_of": 1, "n": 2]) { $1 }, param: "best_of", "at least n (2), got 1")
        try await assertInvalid(infill.merging(["best_of": 17]) { $1 }, param: "best_of", "at most 16, got 17")
        try await assertInvalid(infill.merging(["best_of": 2.5]) { $1 }, param: "best_of", "must be an integer")
        try await assertInvalid(["model": "tinystories-diffusion", "best_of": 2], param: "best_of", "send suffix too")
        try await assertInvalid(["model": "tinystories-lm", "best_of": 2], param: "best_of", "diffusion model only")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "prompt": "Tom ran.", "suffix": "The end.", "decoder": "parallel"], param: "decoder",
            "cannot fill a gap")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "prompt": "Tom ran.", "suffix": "The end.", "max_tokens": 60], param: "suffix",
            "longer than a passage")
        try await assertInvalid(["model": "tinystories-lm", "label": "dialogue"], param: "label", "diffusion model only")
        try await assertInvalid(["model": "tinystories-diffusion", "label": "happy"], param: "label", "dialogue, narration")
        try await assertInvalid(["model": "tinystories-diffusion", "classifier_scale": 4], param: "classifier_scale", "send label too")
        try await assertInvalid(
            ["model": "tinystories-diffusion", "label": "dialogue", "classifier_scale": -1], param: "classifier_scale", "[0, 100]")
    }

    func testCapsAre400() async throws {
        // The test server's caps: max_tokens 64, n 3, steps 100.
        try await assertInvalid(["model": "tinystories-lm", "max_tokens": 65], param: "max_tokens", "at most 64")
        try await assertInvalid(["model": "tinystories-lm", "n": 4], param: "n", "at most 3")
        try await assertInvalid(["model": "tinystories-lm", "prompt": ["a", "b"], "n": 2], param: "n", "2 for each of 2 prompts")
        try await assertInvalid(["model": "tinystories-diffusion", "steps": 101], param: "steps", "at most 100")
    }

    func testUnknownModelIs404() async throws {
        let answer = try await post(jsonBody(["model": "gpt-4", "prompt": "hi"]))
        XCTAssertEqual(answer.status, 404)
        let error = try answer.error
        XCTAssertEqual(error["param"] as? String, "model")
        XCTAssertEqual(error["code"] as? String, "model_not_found")
        XCTAssertTrue((error["message"] as? String ?? "").contains("gpt-4"))
    }

    func testBodyOverTheLimitIs413() async throws {
        let prompt = String(repeating: "Once upon a time. ", count: 2000)  // 36 KB > 16 KB
        let answer = try await post(jsonBody(["model": "tinystories-lm", "prompt": prompt]))
        XCTAssertEqual(answer.status, 413)
        XCTAssertEqual(try answer.error["code"] as? String, "body_too_large")
        // The server is still there.
        let main = try await TestServers.main.value
        let health = try await send(.GET, main.base, "/health")
        XCTAssertEqual(health.status, 200)
    }

    func testUnknownPathIs404() async throws {
        let live = try await TestServers.main.value
        for path in ["/v1/chat/completions", "/nothing/here", "/v2/models"] {
            let answer = try await send(.GET, live.base, path)
            XCTAssertEqual(answer.status, 404, path)
            XCTAssertEqual(try answer.error["code"] as? String, "not_found")
            XCTAssertEqual(answer.headers.first(name: "Content-Type"), "application/json")
        }
    }

    func testWrongMethodIs405() async throws {
        let live = try await TestServers.main.value
        let get = try await send(.GET, live.base, "/v1/completions")
        XCTAssertEqual(get.status, 405)
        XCTAssertEqual(get.headers.first(name: "Allow"), "POST")
        XCTAssertEqual(try get.error["code"] as? String, "method_not_allowed")
        let delete = try await send(.DELETE, live.base, "/health")
        XCTAssertEqual(delete.status, 405)
        XCTAssertEqual(delete.headers.first(name: "Allow"), "GET")
        let post = try await send(.POST, live.base, "/v1/models", body: "{}")
        XCTAssertEqual(post.status, 405)
    }

    func testFullQueueIs503WithRetryAfter() async throws {
        let stalled = try await TestServers.stalled.value
        // The stalled server's worker never runs: the first request holds its one place until we give up on it.
        let waiting = Task {
            try await send(.POST, stalled.base, "/v1/completions", body: jsonBody(["model": "tinystories-lm", "prompt": "hi"]))
        }
        var load = 0
        for _ in 0..<200 where load == 0 {
            try await Task.sleep(nanoseconds: 10_000_000)
            load = stalled.server.worker.load
        }
        XCTAssertEqual(load, 1)
        let answer = try await post(jsonBody(["model": "tinystories-diffusion", "steps": 5]), to: stalled.base)
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.headers.first(name: "Retry-After"), "7")
        XCTAssertEqual(try answer.error["code"] as? String, "queue_full")
        waiting.cancel()
        _ = await waiting.result
    }

    func testRequestPastTheTimeLimitIs504() async throws {
        let impatient = try await TestServers.impatient.value
        for model in ["tinystories-lm", "tinystories-diffusion"] {
            let answer = try await post(jsonBody(["model": model, "prompt": "Tom", "max_tokens": 8]), to: impatient.base)
            XCTAssertEqual(answer.status, 504, answer.body)
            XCTAssertEqual(try answer.error["type"] as? String, "timeout_error")
        }
        // A stream has started when the limit strikes: the error arrives as an event, then [DONE].
        let stream = try await post(jsonBody(["model": "tinystories-lm", "prompt": "Tom", "stream": true]), to: impatient.base)
        XCTAssertEqual(stream.status, 200)
        XCTAssertEqual(stream.events.last, "[DONE]")
        XCTAssertTrue(stream.events.first?.contains("timeout_error") ?? false, stream.body)
        XCTAssertEqual(impatient.server.worker.load, 0, "expired jobs leave the queue")
    }
}
