import Foundation
import Hummingbird

/// An error answered as OpenAI does: `{"error":{"message","type","param","code"}}` with an HTTP status.
///
/// ```swift
/// throw ServeError.invalidField("max_tokens", "max_tokens must be at most 256, got 1000")
/// ```
public struct ServeError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Extra response headers (`Retry-After`, `Allow`).
    public var headers = HTTPFields()

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// 400: a field is missing, of the wrong type, or out of range.
    public static func invalidField(_ field: String, _ message: String) -> ServeError {
        ServeError(status: .badRequest, message: message, type: "invalid_request_error", param: field, code: "invalid_value")
    }

    /// 400: the body is not a JSON object.
    public static func malformedJSON(_ detail: String) -> ServeError {
        ServeError(
            status: .badRequest, message: "the request body is not valid JSON: \(detail)", type: "invalid_request_error",
            code: "invalid_json")
    }

    /// 404: no model with this id.
    public static func unknownModel(_ id: String, known: [String]) -> ServeError {
        ServeError(
            status: .notFound, message: "the model '\(id)' does not exist; available: \(known.joined(separator: ", "))",
            type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    /// 404: no route at this path.
    public static func notFound(_ path: String) -> ServeError {
        ServeError(status: .notFound, message: "no endpoint at \(path)", type: "invalid_request_error", code: "not_found")
    }

    /// 405: the path exists, the method does not.
    public static func methodNotAllowed(_ method: String, _ path: String, allowed: [String]) -> ServeError {
        var error = ServeError(
            status: .methodNotAllowed, message: "\(method) is not allowed on \(path); use \(allowed.joined(separator: " or "))",
            type: "invalid_request_error", code: "method_not_allowed")
        error.headers[.allow] = allowed.joined(separator: ", ")
        return error
    }

    /// 413: the body is larger than the limit.
    public static func bodyTooLarge(limit: Int) -> ServeError {
        ServeError(
            status: .contentTooLarge, message: "the request body is larger than \(limit) bytes", type: "invalid_request_error",
            code: "body_too_large")
    }

    /// 503: the queue is full; come back after `retryAfter` seconds.
    public static func busy(capacity: Int, retryAfter: Int) -> ServeError {
        var error = ServeError(
            status: .serviceUnavailable, message: "the server is busy (\(capacity) requests queued or running); retry later",
            type: "server_busy", code: "queue_full")
        error.headers[.retryAfter] = String(retryAfter)
        return error
    }

    /// 504: the request ran past the time limit.
    public static func timedOut(seconds: Double) -> ServeError {
        ServeError(
            status: .gatewayTimeout, message: "the request took longer than the limit of \(seconds) s", type: "timeout_error",
            code: "timeout")
    }

    /// 503: the server is shutting down.
    public static let shuttingDown = ServeError(
        status: .serviceUnavailable, message: "the server is shutting down",
        type: "server_busy", code: "shutting_down")

    /// The JSON body `{"error": {...}}`.
    public var body: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }

    /// The HTTP response.
    public func response() -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONBody.encode(body))))
    }
}

/// JSON encoding of `[String: Any]` bodies (sorted keys, slashes kept as they are).
enum JSONBody {
    static func encode(_ object: Any) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return [UInt8](data)
    }

    static func string(_ object: Any) -> String { String(decoding: encode(object), as: UTF8.self) }
}
