import Foundation

/// The JSON bodies of `/v1/completions`, shaped as OpenAI's (`text_completion` objects).
struct CompletionResponses {
    let id: String
    let model: String
    let created: Int
    /// Diffusion streams send the passage whole at the end (and its step count); the LM's text goes out token by token.
    let isDiffusion: Bool
    let steps: Int?

    init(model: String, isDiffusion: Bool, steps: Int? = nil) {
        self.isDiffusion = isDiffusion
        self.steps = steps
        id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        self.model = model
        created = Int(Date().timeIntervalSince1970)
    }

    private func object(choices: [[String: Any]]) -> [String: Any] {
        ["id": id, "object": "text_completion", "created": created, "model": model, "choices": choices]
    }

    /// The whole answer: every choice and the token counts.
    func completion(_ choices: [CompletedChoice], promptTokens: Int) -> [String: Any] {
        var body = object(
            choices: choices.enumerated().map { i, choice in
                ["index": i, "text": choice.text, "finish_reason": choice.finishReason.rawValue, "logprobs": NSNull()]
            })
        let completionTokens = choices.map(\.tokens).reduce(0, +)
        body["usage"] = [
            "prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens
        ]
        return body
    }

    /// A streamed piece of text of one choice (language model: a token's worth).
    func delta(choice: Int, text: String) -> [String: Any] {
        object(choices: [["index": choice, "text": text, "finish_reason": NSNull(), "logprobs": NSNull()]])
    }

    /// A diffusion progress event: `text` stays empty (so clients that join the texts get only the final
    /// passage); `estimate` holds the decoded x0 estimate after `step` of `steps`.
    func estimate(step: Int, steps: Int, texts: [String]) -> [String: Any] {
        object(
            choices: texts.enumerated().map { i, text in
                ["index": i, "text": "", "estimate": text, "step": step, "steps": steps, "finish_reason": NSNull(), "logprobs": NSNull()]
            })
    }

    /// The last chunk of a choice in a stream: the remaining text (diffusion: the whole passage) and why it ended.
    func final(choice: Int, text: String, reason: FinishReason) -> [String: Any] {
        var entry: [String: Any] = ["index": choice, "text": text, "finish_reason": reason.rawValue, "logprobs": NSNull()]
        if let steps { entry["step"] = steps; entry["steps"] = steps }
        return object(choices: [entry])
    }
}
