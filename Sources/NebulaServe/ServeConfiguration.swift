import Foundation

/// How `nebula serve` listens and what it accepts: the address, the caps on a request, the queue.
///
/// ```swift
/// var configuration = ServeConfiguration()
/// configuration.port = 0            // any free port (tests)
/// configuration.maxSteps = 100
/// ```
public struct ServeConfiguration: Sendable {
    /// The address to bind: loopback unless asked otherwise.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port = 8080
    /// Largest `max_tokens` a language-model request may ask for.
    public var maxTokens = 256
    /// Largest `n` (choices per request).
    public var maxChoices = 4
    /// Largest `best_of` (loops an infill runs, the likeliest kept).
    public var maxBestOf = 16
    /// Largest `steps` of a diffusion request.
    public var maxSteps = 200
    /// Largest request body, in bytes (413 above it).
    public var maxBodyBytes = 64 * 1024
    /// Requests admitted at once, running and waiting together; one more is answered 503.
    public var queueCapacity = 64
    /// The longest a request may take, from admission to its last token; then it fails with 504.
    public var requestTimeout: Double = 120
    /// Seconds a client is told to wait after a 503 (`Retry-After`).
    public var retryAfterSeconds = 1

    public init() {}
}
