import Foundation
import NIOHTTP1
import XCTest

/// `nebula serve` as a user runs it: the log line per request, and a graceful stop on SIGTERM that lets a
/// running request finish and exits 0.
final class ServeCommandTests: XCTestCase {
    func testSigtermFinishesTheRunningRequestAndExitsZero() async throws {
        guard let executable = nebulaExecutable else { throw XCTSkip("the nebula executable is not built beside the tests") }
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--model", TestServers.bundle.path, "--port", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = OutputCollector()
        pipe.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // Loading the bundle takes about a second in a release build, far longer under ThreadSanitizer.
        var port: Int?
        let deadline = Date().addingTimeInterval(300)
        while port == nil && process.isRunning && Date() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
            port = output.text.range(of: #"on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression)
                .flatMap { Int(output.text[$0].split(separator: ":").last ?? "") }
        }
        let base = "http://127.0.0.1:\(try XCTUnwrap(port, "no 'serving … on http://127.0.0.1:PORT' line in: \(output.text)"))"
        let health = try await send(.GET, base, "/health")
        XCTAssertEqual(health.status, 200)

        let running = Task {
            try await send(
                .POST, base, "/v1/completions", body: jsonBody(["model": "tinystories-diffusion", "steps": 150, "n": 4, "seed": 1]))
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        kill(process.processIdentifier, SIGTERM)
        let answer = try await running.value
        XCTAssertEqual(answer.status, 200, answer.body)
        XCTAssertEqual((try answer.json["choices"] as? [[String: Any]])?.count, 4)

        let stopDeadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < stopDeadline { try await Task.sleep(nanoseconds: 50_000_000) }
        XCTAssertFalse(process.isRunning, "the server did not stop within 120 s of SIGTERM")
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertTrue(output.text.contains("GET /health 200"), output.text)
        XCTAssertTrue(output.text.contains("POST /v1/completions 200"), output.text)
    }
}

/// The `nebula` executable built beside the test bundle.
var nebulaExecutable: URL? {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [folder, folder.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("nebula")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return nil
}

/// A child process's output, gathered from its pipe's handler thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.lock(); data.append(chunk); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
