import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import XCTest
@testable import NebulaServe

/// Live servers on 127.0.0.1 (free ports) over the shipped bundle, started once per test process.
enum TestServers {
    static let bundle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/tinystories")

    struct Live: Sendable {
        let server: NebulaServer
        let port: Int
        var base: String { "http://127.0.0.1:\(port)" }
    }

    /// The main server: the caps the error tests probe, a roomy queue.
    static let main = Task<Live, any Error> {
        var configuration = ServeConfiguration()
        configuration.port = 0
        (configuration.maxTokens, configuration.maxChoices, configuration.maxSteps, configuration.maxBodyBytes) = (64, 3, 100, 16 * 1024)
        return try await start(NebulaServer(models: try ServedModels.load(bundle: bundle), configuration: configuration))
    }

    /// A second copy of the models, for servers whose worker never touches the main one's, and for references.
    static let spareModels = Result { try ServedModels.load(bundle: bundle) }
    /// Models the tests run directly (the references the server's answers are compared with).
    static let referenceModels = Result { try ServedModels.load(bundle: bundle) }

    /// A server whose worker is never started, with room for one request: the second is refused (503).
    static let stalled = Task<Live, any Error> {
        var configuration = ServeConfiguration()
        (configuration.port, configuration.queueCapacity, configuration.retryAfterSeconds) = (0, 1, 7)
        return try await start(NebulaServer(models: try spareModels.get(), configuration: configuration), startWorker: false)
    }

    /// A server whose time limit is zero: every request runs past it (504).
    static let impatient = Task<Live, any Error> {
        var configuration = ServeConfiguration()
        (configuration.port, configuration.requestTimeout) = (0, 0)
        return try await start(NebulaServer(models: try spareModels.get(), configuration: configuration))
    }

    static func start(_ server: NebulaServer, startWorker: Bool = true) async throws -> Live {
        if startWorker { server.worker.start() }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(onServerRunning: { port in continuation.yield(port) })
        Task { try await app.run() }
        for await port in ports { return Live(server: server, port: port) }
        throw CancellationError()
    }
}

/// An HTTP answer, read whole.
struct Answer {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    var json: [String: Any] {
        get throws {
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8))
            return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(body)")
        }
    }

    /// `error` of an OpenAI-style error body, checked to have all four fields.
    var error: [String: Any] {
        get throws {
            let error = try XCTUnwrap(try json["error"] as? [String: Any], "no error object in \(body)")
            for field in ["message", "type", "param", "code"] {
                XCTAssertTrue(error.keys.contains(field), "error without \(field): \(body)")
            }
            XCTAssertFalse((error["message"] as? String ?? "").isEmpty)
            return error
        }
    }

    /// The `data:` payloads of a server-sent-event stream, in order.
    var events: [String] {
        body.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map {
            XCTAssertTrue($0.hasPrefix("data: "), "not an SSE data line: \($0)")
            return String($0.dropFirst("data: ".count))
        }
    }
}

/// Sends a request with AsyncHTTPClient and reads the whole answer.
func send(_ method: HTTPMethod, _ base: String, _ path: String, body: String? = nil, timeout: Int64 = 120) async throws -> Answer {
    var request = HTTPClientRequest(url: base + path)
    request.method = method
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
}

/// A JSON body from a dictionary.
func jsonBody(_ object: [String: Any]) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}
