import Foundation

/// Why a choice stopped: OpenAI's `finish_reason`.
public enum FinishReason: String, Sendable {
    /// The model ended the text (end-of-text token, or the diffusion loop finished).
    case stop
    /// `max_tokens` was reached.
    case length
}

/// One finished choice.
public struct CompletedChoice: Sendable, Equatable {
    public var text: String
    public var finishReason: FinishReason
    public var tokens: Int
}

/// What the model worker reports about a job, in order: any number of `token`/`estimate` events, then
/// exactly one `finished` or `failed`.
public enum JobEvent: Sendable {
    /// Language model: new text of choice `choice` (one token's worth; may be empty while a character is incomplete).
    case token(choice: Int, text: String)
    /// Diffusion: the decoded x0 estimate of each choice after `step` of `steps`.
    case estimate(step: Int, steps: Int, texts: [String])
    /// All choices are done; `promptTokens` is the prompt's length in tokens.
    case finished(choices: [CompletedChoice], promptTokens: Int)
    case failed(ServeError)
}
