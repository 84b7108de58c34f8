import Foundation
import NebulaNN
import NebulaTensor
import NebulaText

/// The shape of a latent autoencoder and how it trains: stored as its folder's `config.json`.
public struct AutoencoderConfig: Codable, Equatable, Sendable {
    /// K: latent vectors per passage.
    public var latents = 16
    /// d: width of each latent vector.
    public var latentWidth = 64
    /// Width of the encoder and the parallel decoder.
    public var width = 192
    public var heads = 6
    /// Bidirectional transformer layers of the encoder, over the frozen LM's states.
    public var encoderLayers = 2
    /// Bidirectional transformer layers of the parallel decoder.
    public var decoderLayers = 4
    /// L: longest passage in tokens, a multiple of K (each latent holds L/K positions).
    public var maxLength = 64
    /// Which of the frozen LM's hidden states the encoder reads: -1 the final (normalised) states, i ≥ 0
    /// the residual stream after block i.
    public var languageModelLayer = -1
    /// Which decoder turns latents into text.
    public var decoder: Decoder = .parallel
    /// Latent noise in training: each passage's latent gets Gaussian noise of a std drawn from
    /// U(0, latentNoise), so the decoder learns to read imperfect (denoised) latents.
    public var latentNoise: Float = 0.1
    /// Share of the encoder's input tokens replaced by `<|endoftext|>` in training (Cosmos' masking).
    public var inputMasking: Float = 0
    /// Share of latent vectors zeroed in training (whole vectors).
    public var latentDropout: Float = 0
    /// Weight of the MSE between the parallel decoder's predicted states and the frozen LM's states.
    public var alignment: Float = 0.1
    /// Weight of the parallel decoder's token loss when the autoregressive decoder is the one decoding:
    /// it forces the latent to carry every token.
    public var parallelWeight: Float = 1
    /// Train only the autoregressive decoder: the encoder and the parallel decoder stay as they are, so
    /// the latent space (and a denoiser trained in it) does not move.
    public var freezeEncoder = false
    /// λ of the shallow fusion the autoregressive decoder is trained and decodes with: its token
    /// distribution is softmax(its logits + λ × the frozen LM's log-probabilities), so it learns to override
    /// the LM where the latent is sure and to lean on it where the latent is vague (0: no fusion).
    public var languageModelPrior: Float = 0
    /// The language-model folder, relative to the autoencoder's folder (or absolute).
    public var languageModel = "../lm"
    /// The language model's end-of-text token id: it ends every passage and starts the autoregressive decoder.
    /// Recorded when the autoencoder is made; a folder without it takes its LM tokenizer's when loaded.
    public var endOfText: Int?
    /// The token id after a passage's end, up to `maxLength` (masked out everywhere; the LM tokenizer's `<|pad|>`,
    /// else the end-of-text id). Recorded and resolved as `endOfText` is.
    public var padding: Int?

    /// The decoders: one forward pass for the whole passage, or token by token from a fine-tuned LM.
    public enum Decoder: String, Codable, Sendable, CaseIterable {
        case parallel
        case autoregressive
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case latents, latentWidth = "latent_width", width, heads, encoderLayers = "encoder_layers"
        case decoderLayers = "decoder_layers", maxLength = "max_length", languageModelLayer = "language_model_layer"
        case decoder, latentNoise = "latent_noise", inputMasking = "input_masking", latentDropout = "latent_dropout"
        case alignment, parallelWeight = "parallel_weight", freezeEncoder = "freeze_encoder", languageModel = "language_model"
        case languageModelPrior = "lm_prior", endOfText = "end_of_text", padding
    }

    /// Reads a `config.json`; a key that is absent keeps its default (configs written by hand or by an
    /// earlier version).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let found = try c.decodeIfPresent(T.self, forKey: key) { value = found }
        }
        try read(.latents, &latents); try read(.latentWidth, &latentWidth); try read(.width, &width); try read(.heads, &heads)
        try read(.encoderLayers, &encoderLayers); try read(.decoderLayers, &decoderLayers); try read(.maxLength, &maxLength)
        try read(.languageModelLayer, &languageModelLayer); try read(.decoder, &self.decoder); try read(.latentNoise, &latentNoise)
        try read(.inputMasking, &inputMasking); try read(.latentDropout, &latentDropout); try read(.alignment, &alignment)
        try read(.parallelWeight, &parallelWeight); try read(.freezeEncoder, &freezeEncoder); try read(.languageModel, &languageModel)
        try read(.languageModelPrior, &languageModelPrior); try read(.endOfText, &endOfText); try read(.padding, &padding)
    }
}

/// Holds a module without making it part of the owner's parameters (reflection skips it): the frozen
/// language model inside the autoencoder.
public struct Frozen<M: Module> {
    public let module: M
    public init(_ module: M) {
        module.freeze()
        module.eval()
        self.module = module
    }
}

/// Stage 2: text ↔ a fixed-size latent, with the frozen stage-1 language model as the encoder's reader.
///
/// The frozen LM reads a passage; a `PatchEncoder` compresses its hidden states into K latent vectors of
/// width d (latent i holds tokens `[i·L/K, (i+1)·L/K)`). The decoder is trained, as an image
/// autoencoder's is: a `ParallelDecoder` predicts every token at once, and with `decoder: .autoregressive`
/// an `AutoregressiveDecoder` (a GPT started from the LM) reads the parallel decoder's states and decodes
/// token by token. The LM's own weights never change.
///
/// ```swift
/// let ae = LatentAutoencoder(config, languageModel: gpt, generator: &rng)
/// let z = ae.encode(tokens: batch.tokens, mask: batch.mask, batch: 8, length: 64)   // [8, K, d]
/// let texts = ae.decode(z, generator: &rng)                                          // token ids
/// ```
public final class LatentAutoencoder: Module {
    public let config: AutoencoderConfig
    public let lm: Frozen<GPT>
    public let encoder: PatchEncoder
    public let parallel: ParallelDecoder
    public let autoregressive: AutoregressiveDecoder?

    public init(_ config: AutoencoderConfig, languageModel: GPT, generator: inout SeededGenerator) {
        self.config = config
        lm = Frozen(languageModel)
        let (w, c, l, k) = (config.width, languageModel.config.width, config.maxLength, config.latents)
        encoder = PatchEncoder(
            stateWidth: c, width: w, heads: config.heads, layers: config.encoderLayers, length: l,
            latents: k, latentWidth: config.latentWidth, generator: &generator)
        parallel = ParallelDecoder(
            latentWidth: config.latentWidth, width: w, heads: config.heads, layers: config.decoderLayers,
            length: l, latents: k, stateWidth: c, generator: &generator)
        autoregressive =
            config.decoder == .autoregressive
            ? AutoregressiveDecoder(languageModel: languageModel, contextWidth: w, generator: &generator) : nil
        super.init()
        // Fan-in scaled weights, U(±1/√fan_in) as PyTorch's default: the GPT-style N(0, 0.02) starts these
        // small networks with signals too weak to carry a passage.
        for (name, weight) in namedParameters() where name.hasSuffix(".weight") && weight.rank == 2 {
            let bound = 1 / Float(weight.shape[1]).squareRoot()
            weight.assign(Tensor.uniform(weight.shape, low: -bound, high: bound, generator: &generator).data)
        }
        autoregressive?.copyLanguageModel(languageModel)
        if config.freezeEncoder {
            encoder.freeze()
            parallel.freeze()
        }
    }

    public var languageModel: GPT { lm.module }

    /// The end-of-text token id (``AutoencoderConfig/endOfText``).
    public var endOfText: Int {
        guard let id = config.endOfText else {
            preconditionFailure("LatentAutoencoder: config.endOfText is not set (the language model's end-of-text token id)")
        }
        return id
    }

    /// The padding token id (``AutoencoderConfig/padding``, else the end-of-text id).
    public var padding: Int32 { Int32(config.padding ?? endOfText) }

    /// The frozen LM's states `[B, L, C]` that the encoder reads (see `AutoencoderConfig.languageModelLayer`).
    public func languageModelStates(tokens: [Int32], batch: Int, length: Int) -> Tensor {
        withNoGrad {
            let layer = config.languageModelLayer
            let states = languageModel.hiddenStates(tokens, batch: batch, length: length, collectLayers: layer >= 0)
            return layer >= 0 ? states.layers[layer] : states.final
        }
    }

    /// Latents `[B, K, d]` of passages padded to `maxLength` (`tokens`, `mask`: `[B, L]`), each vector normalised.
    public func encode(tokens: [Int32], mask: [Float], batch: Int, length: Int) -> Tensor {
        precondition(length == config.maxLength, "LatentAutoencoder: passages are padded to \(config.maxLength) tokens, got \(length)")
        return encoder(languageModelStates(tokens: tokens, batch: batch, length: length), mask: mask)
    }

    /// The reconstruction losses of passages (`tokens`, `mask`: `[B, L]`) from latents `z: [B, K, d]`.
    public struct Losses {
        /// Parallel decoder: mean cross-entropy of each token and of the `<|endoftext|>` after the last.
        public let parallel: Tensor
        /// Autoregressive decoder: teacher-forced mean cross-entropy (nil for the parallel design).
        public let autoregressive: Tensor?
        /// Mean squared error between predicted and frozen-LM states over real tokens (nil without targets).
        public let alignment: Tensor?

        /// The loss of the decoder that decodes (what reconstruction quality is judged by).
        public var reconstruction: Tensor { autoregressive ?? parallel }
    }

    /// Reconstruction losses; `states` (`[B, L, C]`, the frozen LM's) adds the alignment term, and
    /// `latentAlone` gives the autoregressive decoder no input tokens (only `<|endoftext|>`), so it can
    /// lean on nothing but the latent.
    public func losses(
        _ z: Tensor, tokens: [Int32], mask: [Float], batch: Int,
        states: Tensor? = nil, latentAlone: Bool = false
    ) -> Losses {
        let l = config.maxLength
        let decoded = parallel(z)  // [B, L, W]
        let logits = parallel.logits(decoded, embedding: languageModel.wte.weight)  // [B, L, V]
        let endOfText = Int32(endOfText)
        let parallelLoss = crossEntropy(
            logits, targets: Self.parallelTargets(tokens: tokens, mask: mask, batch: batch, length: l, endOfText: endOfText))
        var alignment: Tensor? = nil
        if let states {
            let weights = Tensor(shape: [batch, l, 1], data: mask)
            let squared = ((parallel.stateHead(decoded) - states) * weights).squared()  // [B, L, C]
            alignment = squared.sum() / Float(max(1, mask.reduce(0, +)) * Float(states.shape[2]))
        }
        var autoregressiveLoss: Tensor? = nil
        if let autoregressive {
            var (input, targets) = Self.teacherForcing(tokens: tokens, mask: mask, batch: batch, length: l, endOfText: endOfText)
            if latentAlone { input = [Int32](repeating: endOfText, count: input.count) }
            var logits = autoregressive(input, batch: batch, length: l + 1, memory: autoregressive.memory(decoded))  // [B, L+1, V]
            if config.languageModelPrior != 0 {  // trained as it decodes: fused with the frozen LM (a constant here)
                let prior = withNoGrad { languageModel(input, batch: batch, length: l + 1).logSoftmax() }  // [B, L+1, V]
                logits = logits.logSoftmax() + prior * config.languageModelPrior
            }
            autoregressiveLoss = crossEntropy(logits, targets: targets)
        }
        return Losses(parallel: parallelLoss, autoregressive: autoregressiveLoss, alignment: alignment)
    }

    /// Parallel targets `[B, L]`: the tokens, `<|endoftext|>` right after the last, -1 (ignored) beyond.
    public static func parallelTargets(tokens: [Int32], mask: [Float], batch: Int, length: Int, endOfText: Int32) -> [Int32] {
        var targets = [Int32](repeating: -1, count: batch * length)
        for b in 0..<batch {
            var n = 0
            for t in 0..<length where mask[b * length + t] != 0 {
                targets[b * length + t] = tokens[b * length + t]
                n = t + 1
            }
            if n < length { targets[b * length + n] = endOfText }
        }
        return targets
    }

    /// Autoregressive decoder inputs `[EOT, t…]` and targets `[t…, EOT, -1…]`, each `[B, L+1]`.
    static func teacherForcing(tokens: [Int32], mask: [Float], batch: Int, length: Int, endOfText: Int32) -> ([Int32], [Int32]) {
        var input = [Int32](repeating: endOfText, count: batch * (length + 1))
        var targets = [Int32](repeating: -1, count: batch * (length + 1))
        for b in 0..<batch {
            var n = 0
            for t in 0..<length where mask[b * length + t] != 0 {
                input[b * (length + 1) + t + 1] = tokens[b * length + t]
                targets[b * (length + 1) + t] = tokens[b * length + t]
                n = t + 1
            }
            targets[b * (length + 1) + n] = endOfText
        }
        return (input, targets)
    }

    /// Decodes latents `z: [B, K, d]` to token ids (without the final `<|endoftext|>`), greedily (the
    /// default) or by sampling: all positions at once with the parallel decoder, token by token through
    /// the KV cache with the autoregressive one. `decoder: .parallel` decodes an autoregressive
    /// autoencoder's latents with its parallel decoder.
    ///
    /// `languageModelPrior` λ > 0 adds λ × the frozen LM's log-probabilities (given the tokens so far) to
    /// the autoregressive decoder's at every token (shallow fusion): where a latent is vague — a denoiser's
    /// estimate rather than an encoded passage — the LM's fluency fills in, at some cost to faithful
    /// reconstruction unless the decoder was trained with the same λ. Default: the λ it was trained with
    /// (`AutoencoderConfig.languageModelPrior`). The parallel decoder ignores it.
    ///
    /// `refine` > 0 then corrects the passages by latent-consistent decoding (`refine(_:toward:rounds:)`):
    /// starting from the nearer of this decoder's passage and the parallel decoder's, up to `refine`
    /// single-token edits, each kept only if the passage re-encodes nearer `z`.
    ///
    /// `prefixes` (one per row, or none) forces each passage to start with the given tokens — the decoder reads
    /// them as its own — and `maxTokens` ends every passage after that many tokens: infilling decodes the prefix,
    /// then the gap, from latents whose suffix patches were held.
    public func decode(
        _ z: Tensor, options: SamplingOptions = SamplingOptions(temperature: 0),
        decoder: AutoencoderConfig.Decoder? = nil, languageModelPrior: Float? = nil,
        refine rounds: Int = 0, prefixes: [[Int]] = [], maxTokens: Int? = nil, generator: inout SeededGenerator
    ) -> [[Int]] {
        precondition(prefixes.isEmpty || prefixes.count == z.shape[0], "decode: one prefix per latent, or none")
        let passages = decodeOnce(
            z, options: options, decoder: decoder,
            languageModelPrior: languageModelPrior, prefixes: prefixes, maxTokens: maxTokens, generator: &generator)
        guard rounds > 0 else { return passages }
        precondition(prefixes.isEmpty && maxTokens == nil, "decode: refine does not keep forced prefixes")
        let parallelPassages =
            (decoder ?? config.decoder) == .parallel && options.temperature <= 0
            ? nil
            : decodeOnce(z, decoder: .parallel, generator: &generator)
        let starts = passages.indices.map { i in [passages[i]] + (parallelPassages.map { [$0[i]] } ?? []) }
        return refine(starts, toward: z, rounds: rounds).passages
    }

    private func decodeOnce(
        _ z: Tensor, options: SamplingOptions = SamplingOptions(temperature: 0),
        decoder: AutoencoderConfig.Decoder? = nil, languageModelPrior: Float? = nil,
        prefixes: [[Int]] = [], maxTokens: Int? = nil, generator: inout SeededGenerator
    ) -> [[Int]] {
        let languageModelPrior = languageModelPrior ?? config.languageModelPrior
        let (batch, endOfText) = (z.shape[0], endOfText)
        let limit = min(maxTokens ?? config.maxLength, config.maxLength)  // a latent holds at most maxLength tokens
        /// The token row `b` must have at position `t`, if any.
        func forced(_ b: Int, _ t: Int) -> Int? { prefixes.isEmpty || t >= prefixes[b].count ? nil : prefixes[b][t] }
        guard let autoregressive, (decoder ?? config.decoder) == .autoregressive else {
            return decodeInOnePass(z, options: options, prefixes: prefixes, maxTokens: maxTokens, generator: &generator)
        }
        let v = languageModel.config.vocabSize
        return withNoGrad {
            let decoded = parallel(z)  // [B, L, W]
            let caches = autoregressive.gpt.makeCaches()
            let priorCaches = languageModelPrior != 0 ? languageModel.makeCaches() : []
            let memory = autoregressive.memory(decoded)
            var outputs = [[Int]](repeating: [], count: batch)
            var finished = [Bool](repeating: false, count: batch)
            var next = [Int32](repeating: Int32(endOfText), count: batch)
            for t in 0..<limit {
                var logits = autoregressive(next, batch: batch, length: 1, memory: memory, caches: caches)  // [B, 1, V]
                if languageModelPrior != 0 {  // shallow fusion with the frozen LM
                    let prior = languageModel(next, batch: batch, length: 1, caches: priorCaches).logSoftmax()  // [B, 1, V]
                    logits = logits.logSoftmax() + prior * languageModelPrior
                }
                for b in 0..<batch {
                    let token = forced(b, t) ?? sampleToken(logits.data[(b * v)..<((b + 1) * v)], options, generator: &generator)
                    next[b] = Int32(token)
                    if finished[b] { continue }
                    if token == endOfText { finished[b] = true } else { outputs[b].append(token) }
                    if outputs[b].count >= limit { finished[b] = true }
                }
                if finished.allSatisfy({ $0 }) { break }
            }
            return outputs
        }
    }

    /// Decodes latents `z: [B, K, d]` in one forward pass of `network` (default: this autoencoder's parallel decoder;
    /// any decoder of its shape, e.g. a bundle's one-pass decoder), greedily (in parallel over rows) or by sampling
    /// each position; `prefixes` and `maxTokens` as in `decode`.
    public func decodeInOnePass(
        _ z: Tensor, by network: ParallelDecoder? = nil, options: SamplingOptions = SamplingOptions(temperature: 0),
        prefixes: [[Int]] = [], maxTokens: Int? = nil, generator: inout SeededGenerator
    ) -> [[Int]] {
        let network = network ?? parallel
        let (batch, endOfText, l, v) = (z.shape[0], endOfText, config.maxLength, languageModel.config.vocabSize)
        let limit = min(l, maxTokens ?? l)
        let logits = withNoGrad { network.logits(network(z), embedding: languageModel.wte.weight).data }  // [B, L, V]
        func passage(_ b: Int, _ next: (ArraySlice<Float>) -> Int) -> [Int] {
            var tokens: [Int] = []
            for t in 0..<limit {
                let forced = prefixes.isEmpty || t >= prefixes[b].count ? nil : prefixes[b][t]
                let token = forced ?? next(logits[((b * l + t) * v)..<((b * l + t + 1) * v)])
                if token == endOfText { break }
                tokens.append(token)
            }
            return tokens
        }
        guard options.temperature <= 0 else {
            return (0..<batch).map { b in passage(b) { sampleToken($0, options, generator: &generator) } }
        }
        // Greedy passages draw nothing: they are decoded in parallel.
        var passages = [[Int]](repeating: [], count: batch)
        passages.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forEach(batch) { b in out[b] = passage(b, argmax) }
        }
        return passages
    }

    /// The text of a decoded passage. One that fills every position ran out of room, not out of words: its
    /// unfinished last sentence is cut (a model trained on fixed-length windows always fills them).
    public func passageText(_ tokens: [Int], tokenizer: any Tokenizer) throws -> String {
        let text = try tokenizer.decode(tokens)
        let kept = tokens.count >= config.maxLength ? SentenceSplitter.completeSentences(in: text) : text
        return kept.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
