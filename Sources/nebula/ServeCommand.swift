import ArgumentParser
import Foundation
import NebulaServe
import NebulaTensor

/// `nebula serve`: the OpenAI-compatible HTTP API and the browser playground (see `NebulaServer`).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the bundle over HTTP: an OpenAI-compatible API (/v1/completions, streamed) and a playground at /.",
        discussion:
            "Loopback only unless --host says otherwise. SIGINT/SIGTERM stop accepting connections, let running requests finish, and exit 0."
    )

    @Option(help: "A model bundle folder (holding diffusion/) or a diffusion folder; default: models/tinystories.") var model: String?
    @Option(help: "The address to listen on (0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "The port to listen on (0: any free port).") var port = 8080
    @Option(help: "Largest max_tokens a request may ask for.") var maxTokens = 256
    @Option(help: "Largest steps a diffusion request may ask for.") var maxSteps = 200
    @Option(help: "Largest n (choices per request).") var maxChoices = 4
    @Option(help: "Largest best_of (loops an infill runs, the likeliest kept).") var maxBestOf = 16
    @Option(help: "Requests waiting or running at once; more are answered 503.") var queue = 64
    @Option(help: "Per-request time limit, in seconds (504 past it).") var timeout: Double = 120

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard maxTokens >= 1, maxSteps >= 1, maxChoices >= 1, maxBestOf >= 1, queue >= 1 else {
            throw ValidationError("--max-tokens, --max-steps, --max-choices, --max-best-of and --queue must be at least 1")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let models = try ServedModels.load(bundle: model.map(fileURL) ?? BundleOptions.defaultBundle())
            var configuration = ServeConfiguration()
            (configuration.host, configuration.port) = (host, port)
            (configuration.maxTokens, configuration.maxSteps, configuration.maxChoices) = (maxTokens, maxSteps, maxChoices)
            (configuration.maxBestOf, configuration.queueCapacity, configuration.requestTimeout) = (maxBestOf, queue, timeout)
            let server = NebulaServer(models: models, configuration: configuration)
            // ArgumentParser's command here is synchronous: the server runs on the concurrency pool while
            // this thread waits for it to shut down.
            let done = DispatchSemaphore(value: 0)
            let failure = ErrorBox()
            let context = ExecutionContext.current  // a detached task inherits no task-local values
            Task.detached {
                do { try await context.run { try await server.run() } } catch { failure.error = error }
                done.signal()
            }
            done.wait()
            if let error = failure.error { throw CommandError("the server stopped: \(error)") }
        }
    }
}

/// Carries an error out of the server's task.
private final class ErrorBox: @unchecked Sendable {
    var error: (any Error)?
}
