import Foundation
import Hummingbird
import Logging
import NIOCore

/// `nebula serve`: an OpenAI-compatible HTTP API over a bundle's language model and diffusion system,
/// with a browser playground.
///
/// | route | answer |
/// |---|---|
/// | `GET /` | the playground page |
/// | `GET /health` | `{"status":"ok"}` |
/// | `GET /v1/models` | the two model ids |
/// | `POST /v1/completions` | a completion, or with `"stream": true` server-sent events ending `data: [DONE]` |
///
/// ```swift
/// let server = NebulaServer(models: try ServedModels.load(bundle: bundleURL), configuration: ServeConfiguration())
/// try await server.run()          // until SIGINT or SIGTERM
/// ```
public struct NebulaServer: Sendable {
    public let models: ServedModels
    public let configuration: ServeConfiguration
    public let worker: ModelWorker
    let logger: Logger

    /// The paths served and their methods (for 405 answers).
    static let routes: [String: [String]] = ["/": ["GET"], "/health": ["GET"], "/v1/models": ["GET"], "/v1/completions": ["POST"]]

    public init(models: ServedModels, configuration: ServeConfiguration, logger: Logger = Logger(label: "nebula.serve")) {
        self.models = models
        self.configuration = configuration
        self.logger = logger
        worker = ModelWorker(models: models, configuration: configuration, logger: logger)
    }

    /// The Hummingbird application; `onServerRunning` is given the port it bound (useful with port 0).
    /// Start the worker (`worker.start()`) before running it.
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> Application<RouterResponder<BasicRequestContext>>
    {
        let router = Router()
        router.add(middleware: ErrorAndLogMiddleware(routes: Self.routes, maxBodyBytes: configuration.maxBodyBytes, logger: logger))
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Playground.html)))
        }
        router.get("/health") { _, _ in Self.json(["status": "ok"]) }
        router.get("/v1/models") { [models] _, _ in
            Self.json([
                "object": "list",
                "data": models.ids.map { id -> [String: Any] in
                    var entry: [String: Any] = ["id": id, "object": "model", "created": models.created, "owned_by": "nebula"]
                    // The labels a request's `label` may name (the bundle's classifier), on the diffusion model.
                    if id == models.diffusionID, let labels = models.classifier?.config.labels { entry["labels"] = labels }
                    return entry
                }
            ])
        }
        router.post("/v1/completions") { request, _ in try await self.completions(request) }
        let logger = self.logger
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "nebula"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("serving \(models.ids.joined(separator: " and ")) on http://\(configuration.host):\(port)")
                await onServerRunning(port)
            },
            logger: logger
        )
    }

    /// Serves until SIGINT or SIGTERM: then stops accepting connections, lets in-flight requests finish
    /// (each is bounded by the request time limit) and returns.
    public func run() async throws {
        worker.start()
        defer { worker.stop() }
        try await application().runService(gracefulShutdownSignals: [.sigterm, .sigint])
        logger.info("stopped")
    }

    /// `POST /v1/completions`.
    func completions(_ request: Request) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: configuration.maxBodyBytes)
        let parsed = try CompletionRequest.decode(Data(buffer.readableBytesView))
        let isDiffusion: Bool
        switch parsed.model {
        case models.diffusionID: isDiffusion = true
        case models.languageModelID: isDiffusion = false
        default: throw ServeError.unknownModel(parsed.model, known: models.ids)
        }
        let works = try parsed.jobs(isDiffusion: isDiffusion, configuration: configuration, labels: models.classifier?.config.labels)
        var steps: Int? = nil
        if case .diffusion(let parameters) = works[0] { steps = parameters.generation.steps }
        let responses = CompletionResponses(model: parsed.model, isDiffusion: isDiffusion, steps: steps)
        // All prompts are queued at once, so the worker batches them together.
        let streams = try works.map { try worker.submit($0) }
        if parsed.stream == true { return Self.stream(streams[0], responses: responses) }
        var choices: [CompletedChoice] = [], promptTokens = 0
        for events in streams {
            var answered = false
            for await event in events {
                switch event {
                case .finished(let finished, let tokens):
                    choices += finished
                    promptTokens += tokens
                    answered = true
                case .failed(let error): throw error
                case .token, .estimate: continue
                }
            }
            guard answered else {
                throw ServeError(status: .internalServerError, message: "the request ended without an answer", type: "server_error")
            }
        }
        return Self.json(responses.completion(choices, promptTokens: promptTokens))
    }

    /// Server-sent events: `data: {json}\n\n` per event, then `data: [DONE]\n\n`.
    static func stream(_ events: AsyncStream<JobEvent>, responses: CompletionResponses) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                func send(_ object: Any) async throws {
                    try await writer.write(ByteBuffer(string: "data: " + JSONBody.string(object) + "\n\n"))
                }
                for await event in events {
                    switch event {
                    case .token(let choice, let text):
                        try await send(responses.delta(choice: choice, text: text))
                    case .estimate(let step, let steps, let texts):
                        try await send(responses.estimate(step: step, steps: steps, texts: texts))
                    case .finished(let choices, _):
                        for (i, choice) in choices.enumerated() {
                            // The language model's text went out token by token; a passage arrives whole.
                            let streamed = responses.isDiffusion ? choice.text : ""
                            try await send(responses.final(choice: i, text: streamed, reason: choice.finishReason))
                        }
                    case .failed(let error):
                        try await send(error.body)
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONBody.encode(object))))
    }
}
