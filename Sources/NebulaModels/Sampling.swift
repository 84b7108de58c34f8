import Foundation
import NebulaNN
import NebulaTensor

/// How the next token is drawn from the model's logits.
public struct SamplingOptions: Equatable, Sendable {
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
    if options.temperature <= 0 { return argmax(logits) }
    let scaled = logits.map { $0 / options.temperature }
    let m = scaled.max()!
    let weights = scaled.map { Foundation.exp($0 - m) }  // unnormalised probabilities, the largest 1
    guard options.topK > 0 || options.topP < 1 else {
        return draw(weights.indices, weights: weights, generator: &generator)
    }
    let total = weights.reduce(0, +)
    var threshold: Float = 1e-3
    var candidates: [Int]
    while true {
        candidates = weights.indices.filter { weights[$0] >= threshold }
        let enough =
            options.topK > 0
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

/// The index of the largest logit, the first of equal ones (greedy decoding): the maximum found eight lanes
/// at a time, then its first position.
public func argmax(_ logits: ArraySlice<Float>) -> Int {
    logits.withUnsafeBufferPointer { p in
        let n = p.count
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            lanes = pointwiseMax(lanes, UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var largest = lanes.max()
        while i < n { largest = max(largest, p[i]); i += 1 }
        return p.firstIndex(of: largest) ?? 0  // none only when every logit is NaN
    }
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
    public func generate(
        prompt: [Int], maxTokens: Int, options: SamplingOptions, stopToken: Int? = nil,
        generator: inout SeededGenerator, onToken: (Int) -> Bool = { _ in true }
    ) -> [Int] {
        generate(prompts: [prompt], maxTokens: maxTokens, options: options, stopToken: stopToken, generator: &generator) { _, token in
            onToken(token)
        }[0]
    }

    /// Continues every prompt at once (they may differ in length): each step feeds one token of every
    /// running row through the model as one batch, each row against its own KV cache. Rows draw from
    /// `generator` in row order; a row stops at `stopToken`, after `maxTokens`, or when `onToken(row, token)`
    /// returns false. Otherwise as `generate(prompt:)`; one row gives the same tokens as it.
    public func generate(
        prompts: [[Int]], maxTokens: Int, options: SamplingOptions, stopToken: Int? = nil,
        generator: inout SeededGenerator, onToken: (Int, Int) -> Bool = { _, _ in true }
    ) -> [[Int]] {
        precondition(prompts.allSatisfy { !$0.isEmpty }, "generate: every prompt needs at least one token")
        let v = config.vocabSize
        var histories = prompts.map { Array($0.suffix(config.contextLength)) }
        var caches = histories.map { _ in makeCaches() }
        var outputs = [[Int]](repeating: [], count: prompts.count)
        var running = Array(prompts.indices)
        withNoGrad {
            // Next-token logits of each row; a row's history is run through a fresh cache at the start and
            // whenever its cache fills up.
            var logits = [[Float]](repeating: [], count: prompts.count)
            func prefill(_ row: Int) {
                caches[row] = makeCaches()
                let all = self(histories[row].map(Int32.init), batch: 1, length: histories[row].count, caches: caches[row])  // [1, T, V]
                logits[row] = Array(all.data[(all.count - v)...])
            }
            for row in running { prefill(row) }
            for step in 0..<maxTokens {
                running = running.filter { row in
                    let token = sampleToken(logits[row][...], options, generator: &generator)
                    outputs[row].append(token)
                    histories[row].append(token)
                    return token != stopToken && onToken(row, token)
                }
                if running.isEmpty || step == maxTokens - 1 { break }
                // A full cache is rebuilt over the last three quarters of the context; the rest step together.
                let full = running.filter { caches[$0][0].count >= config.contextLength }
                for row in full {
                    histories[row] = Array(histories[row].suffix(config.contextLength * 3 / 4))
                    prefill(row)
                }
                let stepping = running.filter { !full.contains($0) }
                guard !stepping.isEmpty else { continue }
                let next = decodeStep(stepping.map { Int32(histories[$0].last!) }, caches: stepping.map { caches[$0] })  // [B, V]
                for (i, row) in stepping.enumerated() { logits[row] = Array(next.data[(i * v)..<((i + 1) * v)]) }
            }
        }
        return outputs
    }

    /// Next-token logits `[B, V]` for one new token per row, each row continuing its own caches (one per
    /// block; their lengths may differ). Every projection, MLP and the output head run once over the
    /// `[B, 1, C]` batch; only attention goes row by row, against each row's cache.
    public func decodeStep(_ tokens: [Int32], caches: [[KVCache]]) -> Tensor {
        let (b, c) = (tokens.count, config.width)
        precondition(
            caches.count == b && caches.allSatisfy { $0.count == blocks.count },
            "GPT.decodeStep: \(caches.count) cache sets for \(b) tokens")
        var positions = [Float](repeating: 0, count: b * c)
        let table = wpe.weight.data
        for (row, rowCaches) in caches.enumerated() {
            let p = rowCaches[0].count
            precondition(p < config.contextLength, "GPT.decodeStep: row \(row)'s cache holds the whole context (\(p) positions)")
            positions.replaceSubrange((row * c)..<((row + 1) * c), with: table[(p * c)..<((p + 1) * c)])
        }
        var x = wte(tokens, shape: [b, 1]) + Tensor(shape: [b, 1, c], data: positions)  // [B, 1, C]
        for (layer, block) in blocks.enumerated() {
            let h = x + block.attn(block.ln1(x), caches: caches.map { $0[layer] })  // [B, 1, C]
            x = h + block.mlp(block.ln2(h))
        }
        return logits(lnf(x)).reshaped([b, config.vocabSize])  // [B, V]
    }
}
