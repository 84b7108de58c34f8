import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor
import NebulaText

/// One sequence being sampled: its own KV cache, tokens and random stream.
final class LanguageModelSequence {
    var caches: [KVCache]
    /// The tokens the cache covers, plus the one sampled last (fed at the next step).
    var history: [Int]
    /// Sampled tokens (without a final end-of-text).
    var output: [Int] = []
    var generator: SeededGenerator
    /// Next-token logits after the last fed token.
    var logits: [Float] = []
    /// Unicode scalars already sent to a streaming client.
    var sentScalars = 0
    var finish: FinishReason?

    init(caches: [KVCache], history: [Int], seed: UInt64) {
        self.caches = caches
        self.history = history
        generator = SeededGenerator(seed: seed)
    }
}

/// A language-model job in progress: one sequence per choice.
final class LanguageModelRun {
    let job: Job
    let parameters: LanguageModelParameters
    let promptTokens: Int
    let sequences: [LanguageModelSequence]

    init(job: Job, parameters: LanguageModelParameters, promptTokens: Int, sequences: [LanguageModelSequence]) {
        self.job = job
        self.parameters = parameters
        self.promptTokens = promptTokens
        self.sequences = sequences
    }

    var isDone: Bool { sequences.allSatisfy { $0.finish != nil } }
}

/// Continuous batching for the language model: every step samples one token for every running sequence of
/// every job, then feeds all of them through the model in one batch — every projection, MLP and the output
/// head as one `[B, 1, C]` pass, only attention row by row against each sequence's own KV cache (their
/// lengths differ).
/// Sampling is `GPT.generate`'s: the same tokens for the same seed, whatever else is in the batch.
struct LanguageModelBatcher {
    let lm: GPT
    let tokenizer: any Tokenizer
    let endOfText: Int

    /// Encodes the prompt (an empty one starts from `<|endoftext|>`) and fills each choice's cache with it.
    func admit(_ job: Job, _ parameters: LanguageModelParameters) throws -> LanguageModelRun {
        let encoded = try tokenizer.encode(parameters.prompt)
        let prompt = Array((encoded.isEmpty ? [endOfText] : encoded).suffix(lm.config.contextLength))
        let sequences = (0..<parameters.choices).map { i -> LanguageModelSequence in
            let sequence = LanguageModelSequence(caches: lm.makeCaches(), history: prompt, seed: parameters.seed &+ UInt64(i))
            prefill(sequence)
            return sequence
        }
        return LanguageModelRun(job: job, parameters: parameters, promptTokens: encoded.count, sequences: sequences)
    }

    /// Runs the sequence's whole history through a fresh cache (at admission, and when the cache is full:
    /// then over the last three quarters of the context, as `GPT.generate` does).
    func prefill(_ sequence: LanguageModelSequence) {
        sequence.caches = lm.makeCaches()
        let ids = sequence.history.map(Int32.init)
        let logits = lm(ids, batch: 1, length: ids.count, caches: sequence.caches)  // [1, T, V]
        let v = lm.config.vocabSize
        sequence.logits = Array(logits.data[(logits.count - v)...])
    }

    /// One step for every running sequence of `runs`: sample, report, and feed the new tokens.
    func step(_ runs: [LanguageModelRun]) {
        var feed: [LanguageModelSequence] = []
        for run in runs {
            let options = SamplingOptions(temperature: run.parameters.temperature, topP: run.parameters.topP)
            for (index, sequence) in run.sequences.enumerated() where sequence.finish == nil {
                let token = sampleToken(sequence.logits[...], options, generator: &sequence.generator)
                if token == endOfText {
                    sequence.finish = .stop
                } else {
                    sequence.output.append(token)
                    sequence.history.append(token)
                    if sequence.output.count >= run.parameters.maxTokens { sequence.finish = .length }
                }
                if run.parameters.streamsTokens {
                    let delta = newText(sequence)
                    if !delta.isEmpty { run.job.send(.token(choice: index, text: delta)) }
                }
                if sequence.finish == nil { feed.append(sequence) }
            }
        }
        let full = feed.filter { $0.caches[0].count >= lm.config.contextLength }
        for sequence in full {
            sequence.history = Array(sequence.history.suffix(lm.config.contextLength * 3 / 4))
            prefill(sequence)
        }
        let running = feed.filter { $0.caches[0].count < lm.config.contextLength }
        if !running.isEmpty { decodeStep(running) }
    }

    /// Feeds each sequence's last token at its own position, all in one batch.
    func decodeStep(_ sequences: [LanguageModelSequence]) {
        let v = lm.config.vocabSize
        let logits = lm.decodeStep(sequences.map { Int32($0.history[$0.history.count - 1]) }, caches: sequences.map(\.caches))  // [B, V]
        let data = logits.data
        for (row, sequence) in sequences.enumerated() { sequence.logits = Array(data[(row * v)..<((row + 1) * v)]) }
    }

    /// The text not yet sent: whole characters only while the sequence runs (a token may end mid-character).
    func newText(_ sequence: LanguageModelSequence) -> String {
        let text = text(of: sequence)
        let scalars = Array(text.unicodeScalars)
        if sequence.finish == nil, scalars.last == "\u{FFFD}" { return "" }
        guard scalars.count > sequence.sentScalars else { return "" }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[sequence.sentScalars...])
        sequence.sentScalars = scalars.count
        return String(view)
    }

    func text(of sequence: LanguageModelSequence) -> String {
        (try? tokenizer.decode(sequence.output)) ?? ""
    }

    /// The finished choices of a run.
    func completed(_ run: LanguageModelRun) -> [CompletedChoice] {
        run.sequences.map { CompletedChoice(text: text(of: $0), finishReason: $0.finish ?? .length, tokens: $0.output.count) }
    }
}
