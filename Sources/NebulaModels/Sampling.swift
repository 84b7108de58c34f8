import Foundation
import NebulaNN
import NebulaTensor

/// How the next token is drawn from the model's logits.
public struct SamplingOptions: Sendable {
    /// 0 = greedy (argmax).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0 = off).
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    public var topP: Float = 1
    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }
}

/// Draws a token index from one row of logits.
public func sampleToken(_ logits: ArraySlice<Float>, _ options: SamplingOptions, generator: inout SeededGenerator) -> Int {
    let base = logits.startIndex
    if options.temperature <= 0 {
        var best = base
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - base
    }
    var order = Array(0..<logits.count)
    let scaled = logits.map { $0 / options.temperature }
    order.sort { scaled[$0] > scaled[$1] }
    if options.topK > 0 { order = Array(order.prefix(options.topK)) }
    let m = scaled[order[0]]
    var probs = order.map { Foundation.exp(scaled[$0] - m) }
    let total = probs.reduce(0, +)
    probs = probs.map { $0 / total }
    if options.topP < 1 {
        var cumulative: Float = 0
        var keep = 0
        while keep < probs.count { cumulative += probs[keep]; keep += 1; if cumulative >= options.topP { break } }
        order = Array(order.prefix(keep))
        probs = Array(probs.prefix(keep))
    }
    let r = generator.nextUniform() * probs.reduce(0, +)
    var acc: Float = 0
    for (i, p) in probs.enumerated() {
        acc += p
        if r < acc { return order[i] }
    }
    return order[order.count - 1]
}

extension GPT {
    /// Continues `prompt` token by token through the KV cache, calling `onToken` as each arrives (return
    /// false to stop). A prompt longer than the context keeps its last tokens; when the cache fills up, it
    /// is rebuilt over the last three quarters of the context (a sliding window), so generation can run
    /// past the context length. Stops after `maxTokens` or at `stopToken`.
    @discardableResult
    public func generate(prompt: [Int], maxTokens: Int, options: SamplingOptions, stopToken: Int? = nil,
                         generator: inout SeededGenerator, onToken: (Int) -> Bool = { _ in true }) -> [Int] {
        precondition(!prompt.isEmpty, "generate: the prompt needs at least one token")
        var history = Array(prompt.suffix(config.contextLength))
        var caches = makeCaches()
        var output: [Int] = []
        let v = config.vocabSize
        withNoGrad {
            var logits = self(history.map(Int32.init), batch: 1, length: history.count, caches: caches)   // [1, T, V]
            for _ in 0..<maxTokens {
                let token = sampleToken(logits.data[(logits.count - v)...], options, generator: &generator)
                output.append(token)
                history.append(token)
                if token == stopToken || !onToken(token) { break }
                if caches[0].count < config.contextLength {
                    logits = self([Int32(token)], batch: 1, length: 1, caches: caches)
                } else {
                    history = Array(history.suffix(config.contextLength * 3 / 4))
                    caches = makeCaches()
                    logits = self(history.map(Int32.init), batch: 1, length: history.count, caches: caches)
                }
            }
        }
        return output
    }
}
