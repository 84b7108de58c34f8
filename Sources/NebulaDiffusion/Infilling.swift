import Foundation
import NebulaModels
import NebulaNN
import NebulaTensor

/// Latent vectors held while the others are generated: infilling. A passage with a gap is a latent with some of
/// its K vectors known (vector i holds tokens `[i·L/K, (i+1)·L/K)`), so the loop denoises the unknown vectors and
/// keeps the known ones on their noised encodings at every step (replacement; RePaint's resampling with
/// `resample` > 1).
public struct KnownLatents {
    /// The encoded latents `[B, K, d]`; only the known vectors are read.
    public var latents: Tensor
    /// Which of the K vectors of each row are known.
    public var known: [[Bool]]
    /// How many times each step is taken, re-noised back to its start time between tries (1: replacement only).
    public var resample: Int

    /// Rows that each hold their own vectors (`known[b]` for row b).
    public init(latents: Tensor, rows known: [[Bool]], resample: Int = 1) {
        precondition(latents.rank == 3 && latents.shape[0] == known.count, "KnownLatents: latents [B, K, d] with one mask per row")
        precondition(known.allSatisfy { $0.count == latents.shape[1] }, "KnownLatents: every mask needs K = \(latents.shape[1]) entries")
        precondition(resample >= 1, "KnownLatents: resample must be at least 1")
        (self.latents, self.known, self.resample) = (latents, known, resample)
    }

    /// Rows that all hold the same vectors.
    public init(latents: Tensor, known: [Bool], resample: Int = 1) {
        precondition(latents.rank == 3, "KnownLatents: latents [B, K, d]")
        self.init(latents: latents, rows: [[Bool]](repeating: known, count: latents.shape[0]), resample: resample)
    }

    /// What a denoiser with a mask channel reads: `[B, K, d + 1]`, each known vector's latent followed by 1, zeros
    /// elsewhere (``Denoiser/knownInput(latents:known:)``).
    public var denoiserInput: Tensor { Denoiser.knownInput(latents: latents, known: known) }

    /// `z` (`[B, K, d]`, at `time`) with every known vector replaced by its latent noised to `time`:
    /// α(t)·z₀ + σ(t)·ε, with fresh noise (exactly z₀ at time 0).
    public func imposed(on z: Tensor, time: Float, schedule: NoiseSchedule, generator: inout SeededGenerator) -> Tensor {
        precondition(z.shape == latents.shape, "KnownLatents: sample \(z.shape) and latents \(latents.shape) differ")
        let (alpha, sigma) = time > 0 ? schedule.alphaSigma(Double(time)) : (1, 0)  // the schedule's α(0) is just below 1
        let (rows, k, d) = (z.shape[0], z.shape[1], z.shape[2])
        var values = z.data
        let z0 = latents.data
        for b in 0..<rows {
            for j in 0..<k where known[b][j] {
                for e in ((b * k + j) * d)..<((b * k + j + 1) * d) {
                    let noise = time > 0 ? generator.nextGaussian() : 0
                    values[e] = Float(alpha) * z0[e] + Float(sigma) * noise
                }
            }
        }
        return Tensor(shape: z.shape, data: values)
    }
}

extension NoiseSchedule {
    /// `z` at time `from` carried forward to the later time `to` by the forward process:
    /// z_t = (α_t/α_s)·z_s + √(σ_t² − (α_t/α_s)²·σ_s²)·ε.
    public func renoised(_ z: Tensor, from s: Float, to t: Float, generator: inout SeededGenerator) -> Tensor {
        precondition(t >= s, "renoised: the target time must not be earlier")
        let (alphaS, sigmaS) = alphaSigma(Double(s)), (alphaT, sigmaT) = alphaSigma(Double(t))
        let ratio = alphaT / alphaS
        let std = Float(max(0, sigmaT * sigmaT - ratio * ratio * sigmaS * sigmaS).squareRoot())
        return z * Float(ratio) + Tensor.randn(z.shape, std: std, generator: &generator)
    }
}

/// Why an infill cannot be made.
public struct InfillError: Error, LocalizedError, Equatable {
    public let errorDescription: String?
    init(_ message: String) { errorDescription = message }
}

/// One infilled passage: the generated middle and the whole passage (prefix + middle + suffix), as token ids.
public struct Infill: Sendable, Equatable {
    public var middle: [Int]
    public var passage: [Int]
    public init(middle: [Int], passage: [Int]) { (self.middle, self.passage) = (middle, passage) }
}

extension LatentDiffusion {
    /// The tokens of a decoded passage (`tokens`, starting with the `prefix` tokens) between the prefix and where the
    /// decoder arrives at the suffix's first two tokens, looked for from half a gap to one and a half gaps after the
    /// prefix; without such an arrival, the first `gap` tokens after the prefix.
    public static func middle(of tokens: [Int], prefix: Int, gap: Int, suffix: [Int]) -> [Int] {
        let head = Array(suffix.prefix(2))
        let earliest = prefix + max(1, gap / 2), latest = min(prefix + gap + gap / 2, tokens.count - head.count)
        if !head.isEmpty, earliest <= latest {
            // The arrival nearest the requested length.
            let candidates = (earliest...latest).sorted { abs($0 - prefix - gap) < abs($1 - prefix - gap) }
            if let arrival = candidates.first(where: { Array(tokens[$0..<($0 + head.count)]) == head }) {
                return Array(tokens[prefix..<arrival])
            }
        }
        return Array(tokens[min(prefix, tokens.count)..<min(prefix + gap, tokens.count)])
    }

    /// The frozen LM's mean cross-entropy of `tokens`, read after the end-of-text token.
    func languageModelLoss(of tokens: [Int]) -> Float {
        let lm = autoencoder.languageModel
        let sequence = ([autoencoder.endOfText] + tokens).suffix(lm.config.contextLength + 1).map(Int32.init)
        return withNoGrad {
            lm.loss(Array(sequence.dropLast()), targets: Array(sequence.dropFirst()), batch: 1, length: sequence.count - 1).item
        }
    }

    /// The latent `[1, K, d]` of prefix + filler + suffix, the filler being the frozen LM's greedy continuation of the
    /// prefix for `gap` tokens: what an infill holds its known vectors to (the suffix's vectors read causal LM states,
    /// which see the gap, so the gap needs some filler).
    public func heldLatents(prefix: [Int], suffix: [Int], gap: Int) -> Tensor {
        var greedy = SeededGenerator(seed: 0)
        let filler = autoencoder.languageModel.generate(
            prompt: [autoencoder.endOfText] + prefix, maxTokens: gap, options: SamplingOptions(temperature: 0), generator: &greedy)
        return autoencoder.encode([(prefix + filler + suffix).map(Int32.init)])
    }

    /// `suffix` as the text after a gap: a word there starts with its space, as the tokenizer saw it in training
    /// ("He was sad." → " He was sad."); a suffix that starts with a space or punctuation is kept as it is.
    public static func textAfterGap(_ suffix: String) -> String {
        suffix.first.map { $0.isWhitespace || $0.isPunctuation } == true ? suffix : " " + suffix
    }

    /// The latent vectors an infill holds: those whose tokens all lie in the prefix, or all at or after the gap's
    /// end (the suffix and the padding after it).
    public func knownVectors(prefix: Int, gap: Int) -> [Bool] {
        let (k, l) = (autoencoder.config.latents, autoencoder.config.maxLength)
        let patch = l / k
        return (0..<k).map { i in (i + 1) * patch <= prefix || i * patch >= prefix + gap }
    }

    /// Generates `count` middles of `gap` tokens between `prefix` and `suffix` (token ids) so that the three read as
    /// one passage.
    ///
    /// The passage prefix + filler + suffix is encoded, where the filler is the frozen LM's greedy continuation of
    /// the prefix (the suffix's latent vectors read the LM's states, which see the gap); the loop then generates the
    /// vectors over the gap with the others held (``KnownLatents``, `resample` tries a step), and the decoder,
    /// forced to start with the prefix, writes on. The middle ends where the decoder arrives at the suffix (its
    /// first two tokens, between half and one and a half gaps in), else after `gap` tokens: the decoder, not the
    /// patch grid, chooses the junction, so a word cut by a patch boundary is decoded whole. With `candidates` > 1,
    /// each of the `count` infills is the best of that many loops by the frozen LM's likelihood of the whole passage
    /// (the one reader of the system that sees the suffix in words), or by their consensus (`selection`,
    /// ``InfillSelection``). `strength` < 1 starts the loop from the encoded
    /// passage noised to that time instead of from noise (as `edit` does): the gap's vectors begin at the LM filler's.
    /// `steering` moves every step towards a classifier's label (``ClassifierGuidance``).
    /// - Throws: ``InfillError`` when the three do not fit in one passage or the gap is empty.
    public func infill(
        prefix: [Int], suffix: [Int], gap: Int, count: Int, _ config: GenerationConfig, resample: Int = 1, candidates: Int = 1,
        selection: InfillSelection = .likelihood, strength: Float = 1, steering: ClassifierGuidance? = nil,
        generator: inout SeededGenerator, onStep: ((Int, SamplerOutput) -> Void)? = nil
    ) throws -> [Infill] {
        try infill(
            [Gap](repeating: Gap(prefix: prefix, suffix: suffix, length: gap), count: count), config, resample: resample,
            candidates: candidates, selection: selection, strength: strength, steering: steering, generator: &generator,
            onStep: onStep)
    }

    /// A gap to fill: the tokens before and after it, and its length in tokens.
    public struct Gap: Sendable, Hashable {
        public var prefix: [Int], suffix: [Int], length: Int
        public init(prefix: [Int], suffix: [Int], length: Int) { (self.prefix, self.suffix, self.length) = (prefix, suffix, length) }

        /// The infill of this gap in a passage the decoder wrote after the prefix (``LatentDiffusion/middle(of:prefix:gap:suffix:)``).
        public func infill(decoded tokens: [Int]) -> Infill {
            let middle = LatentDiffusion.middle(of: tokens, prefix: prefix.count, gap: length, suffix: suffix)
            return Infill(middle: middle, passage: prefix + middle + suffix)
        }
    }

    /// One infill for each of `gaps`, all in one loop (a batch of their rows, each holding its own known vectors);
    /// otherwise as ``infill(prefix:suffix:gap:count:_:resample:candidates:selection:strength:steering:generator:onStep:)``,
    /// which is this with `count` copies of one gap.
    public func infill(
        _ gaps: [Gap], _ config: GenerationConfig, resample: Int = 1, candidates: Int = 1,
        selection: InfillSelection = .likelihood, strength: Float = 1,
        steering: ClassifierGuidance? = nil, generator: inout SeededGenerator, onStep: ((Int, SamplerOutput) -> Void)? = nil
    ) throws -> [Infill] {
        let length = autoencoder.config.maxLength
        for gap in gaps {
            guard gap.length >= 1 else { throw InfillError("the gap must hold at least one token, got \(gap.length)") }
            guard gap.prefix.count + gap.length + gap.suffix.count <= length else {
                throw InfillError(
                    "prefix (\(gap.prefix.count) tokens) + gap (\(gap.length)) + suffix (\(gap.suffix.count)) is longer than a passage (\(length) tokens)"
                )
            }
        }
        guard resample >= 1 else { throw InfillError("resample must be at least 1, got \(resample)") }
        guard candidates >= 1 else { throw InfillError("candidates must be at least 1, got \(candidates)") }
        guard strength > 0 && strength <= 1 else { throw InfillError("strength must be in (0, 1], got \(strength)") }
        guard !gaps.isEmpty else { return [] }
        // Row r is candidate r % candidates of gap r / candidates; a gap's latent is encoded once.
        var encoded: [Gap: Tensor] = [:]
        for gap in gaps where encoded[gap] == nil { encoded[gap] = heldLatents(prefix: gap.prefix, suffix: gap.suffix, gap: gap.length) }
        let rows = gaps.flatMap { [Gap](repeating: $0, count: candidates) }
        let latents = Tensor.concatenate(rows.map { encoded[$0]! }, axis: 0)  // [rows, K, d]
        let known = KnownLatents(
            latents: latents, rows: rows.map { knownVectors(prefix: $0.prefix.count, gap: $0.length) }, resample: resample)
        let start = strength < 1 ? (latent: latents, time: strength) : nil
        let z = sample(count: rows.count, config, start: start, known: known, steering: steering, generator: &generator, onStep: onStep)
        let decoded = autoencoder.decode(
            z, options: config.decoding, languageModelPrior: config.languageModelPrior, prefixes: rows.map(\.prefix), generator: &generator)
        let infills = zip(rows, decoded).map { gap, tokens in gap.infill(decoded: tokens) }
        guard candidates > 1 else { return infills }
        return stride(from: 0, to: infills.count, by: candidates).map { first in
            keep(Array(infills[first..<(first + candidates)]), by: selection)
        }
    }

    /// The `count` of `candidates`, infills of one gap, whose whole passages the frozen LM finds likeliest, in their
    /// order among `candidates` (what the server's `best_of` keeps).
    public func likeliest(_ candidates: [Infill], count: Int) -> [Infill] {
        guard count < candidates.count else { return candidates }
        let losses = candidates.map { languageModelLoss(of: $0.passage) }
        let kept = candidates.indices.sorted { (losses[$0], $0) < (losses[$1], $1) }.prefix(count)
        return kept.sorted().map { candidates[$0] }
    }

    /// The one of `candidates`, infills of one gap, that `selection` keeps.
    public func keep(_ candidates: [Infill], by selection: InfillSelection) -> Infill {
        candidates[selection.pick(candidates, languageModelLoss: languageModelLoss)]
    }
}

/// How an infill keeps one of its candidate loops (`candidates` > 1).
public enum InfillSelection: String, Codable, Sendable, CaseIterable {
    /// The candidate whose whole passage the frozen LM finds most likely (the one reader of the system that sees
    /// the suffix in words).
    case likelihood
    /// The candidate whose middle shares most tokens with the other candidates' middles — minimum Bayes risk under
    /// token F1, as diffusion LMs decode (DiffuSeq): the loops' consensus, nearest on average to what they write.
    case consensus

    /// The index of the kept candidate.
    func pick(_ group: [Infill], languageModelLoss: ([Int]) -> Float) -> Int {
        switch self {
        case .likelihood:
            let losses = group.map { languageModelLoss($0.passage) }
            return group.indices.min { losses[$0] < losses[$1] }!
        case .consensus:
            let agreement = group.indices.map { i in
                group.indices.filter { $0 != i }.map { Self.tokenF1(group[i].middle, group[$0].middle) }.reduce(0, +)
            }
            return group.indices.max { agreement[$0] < agreement[$1] }!  // the first of equals
        }
    }

    /// F1 of the tokens two middles share, counted with multiplicity: 2 · shared / (|a| + |b|), the harmonic mean of
    /// precision and recall (symmetric); 1 for two empty middles.
    public static func tokenF1(_ a: [Int], _ b: [Int]) -> Double {
        guard !a.isEmpty || !b.isEmpty else { return 1 }
        var counts: [Int: Int] = [:]
        for token in a { counts[token, default: 0] += 1 }
        var shared = 0
        for token in b where counts[token, default: 0] > 0 {
            counts[token]! -= 1
            shared += 1
        }
        return 2 * Double(shared) / Double(a.count + b.count)
    }
}
