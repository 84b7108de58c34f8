import Foundation
import Hummingbird
import Logging

/// Turns every failure into an OpenAI-style error response and logs one line per request
/// (method, path, status, milliseconds — for a stream, when its last byte is written).
///
/// Hummingbird answers an unmatched route with 404; a path that exists under another method becomes
/// 405 with `Allow`, and a body over the limit (NIO's too-many-bytes error) 413.
struct ErrorAndLogMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each path's methods, for 405 answers.
    let routes: [String: [String]]
    let maxBodyBytes: Int
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.serveError(error, request: request, routes: routes, maxBodyBytes: maxBodyBytes).response()
        }
        let (method, path, status, logger) = (request.method.rawValue, request.uri.path, response.status.code, self.logger)
        @Sendable func log() {
            let elapsed = (ContinuousClock.now - start).components
            let ms = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
            logger.info("\(method) \(path) \(status) \(String(format: "%.1f", ms)) ms")
        }
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { log() }
            try await body.write(writer)
        }
        return response
    }

    static func serveError(_ error: any Error, request: Request, routes: [String: [String]], maxBodyBytes: Int) -> ServeError {
        if let error = error as? ServeError { return error }
        if let error = error as? any HTTPResponseError {
            switch error.status {
            case .notFound:
                if let allowed = routes[request.uri.path] {
                    return .methodNotAllowed(request.method.rawValue, request.uri.path, allowed: allowed)
                }
                return .notFound(request.uri.path)
            case .contentTooLarge:
                return .bodyTooLarge(limit: maxBodyBytes)
            default:
                return ServeError(
                    status: error.status, message: (error as? HTTPError)?.body ?? "\(error.status.reasonPhrase)",
                    type: error.status.code < 500 ? "invalid_request_error" : "server_error")
            }
        }
        return ServeError(status: .internalServerError, message: "internal error: \(error)", type: "server_error")
    }
}
