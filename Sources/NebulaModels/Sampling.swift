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
///
/// Without truncation the draw walks the vocabulary in index order. With top-k or top-p only the tokens
/// a truncation can keep are sorted: those above a probability threshold, lowered until they hold the k
/// most likely tokens or the nucleus — a few dozen instead of the whole vocabulary.
public func sampleToken(_ logits: ArraySlice<Float>, _ options: SamplingOptions, generator: inout SeededGenerator) -> Int {
    let base = logits.startIndex
    if options.temperature <= 0 {
        var best = base
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - base
    }
    let scaled = logits.map { $0 / options.temperature }
    let m = scaled.max()!
    let weights = scaled.map { Foundation.exp($0 - m) }        // unnormalised probabilities, the largest 1
    guard options.topK > 0 || options.topP < 1 else {
        return draw(weights.indices, weights: weights, generator: &generator)
    }
    let total = weights.reduce(0, +)
    var threshold: Float = 1e-3
    var candidates: [Int]
    while true {
        candidates = weights.indices.filter { weights[$0] >= threshold }
        let enough = options.topK > 0
            ? candidates.count >= options.topK
            : candidates.reduce(0) { $0 + weights[$1] } >= options.topP * total
        if enough || threshold == 0 { break }
        threshold = threshold > 1e-30 ? threshold * 1e-4 : 0
    }
    candidates.sort { scaled[$0] > scaled[$1] }
    if options.topK > 0 { candidates = Array(candidates.prefix(options.topK)) }
    if options.topP < 1 {
        // Within the top k when both are set, as the k tokens' renormalised probabilities.
        let mass = options.topK > 0 ? candidates.reduce(0) { $0 + weights[$1] } : total
        var cumulative: Float = 0
        var keep = 0
        while keep < candidates.count {
            cumulative += weights[candidates[keep]] / mass
            keep += 1
            if cumulative >= options.topP { break }
        }
        candidates = Array(candidates.prefix(keep))
    }
    return draw(candidates, weights: weights, generator: &generator)
}

/// Draws one of `tokens` with probability proportional to its weight.
private func draw<Tokens: Collection<Int>>(_ tokens: Tokens, weights: [Float], generator: inout SeededGenerator) -> Int {
    let r = generator.nextUniform() * tokens.reduce(0) { $0 + weights[$1] }
    var acc: Float = 0
    var last = tokens.first!
    for token in tokens where weights[token] > 0 {
        acc += weights[token]
        last = token
        if r < acc { return token }
    }
    return last
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
