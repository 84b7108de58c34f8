import Foundation
import NebulaTensor

extension LatentAutoencoder {
    /// Latent-consistent decoding: corrects decoded passages by searching for text whose own latent is
    /// nearer the one being decoded. The encoder is deterministic, so a passage re-encodes exactly to its
    /// latent: a decoded passage that re-encodes far from `z` is wrong somewhere, and of two candidates the
    /// nearer one is the better guess.
    ///
    /// Latent i holds tokens `[i·L/K, (i+1)·L/K)`, so the latent vector that re-encodes farthest from
    /// its target points at the tokens that are wrong. Each round, for every passage still improving, the
    /// parallel decoder's likeliest `proposals` single-token edits within that patch (its top tokens in
    /// place of the current ones; `<|endoftext|>` cuts the passage there, a token just past its end extends
    /// it) are re-encoded in one batch, and the edit that brings the latent nearest `z` is kept if it is
    /// nearer than the current passage. A passage stops when no edit helps or it re-encodes exactly to `z`.
    /// Deterministic; costs up to `proposals` encodes per passage and round.
    ///
    /// - Parameters:
    ///   - passages: the starting decodes, one or more candidates per latent (`[B][candidates][tokens]`,
    ///     without `<|endoftext|>`); the search starts from the nearest.
    ///   - z: the latents `[B, K, d]` being decoded.
    ///   - rounds: the most edits made to one passage.
    /// - Returns: each latent's passage and the squared distance of its latent to `z`.
    public func refine(_ passages: [[[Int]]], toward z: Tensor, rounds: Int, proposals: Int = 64) -> (passages: [[Int]], distances: [Float])
    {
        let (batch, l, k, v) = (z.shape[0], config.maxLength, config.latents, languageModel.config.vocabSize)
        precondition(passages.count == batch && passages.allSatisfy { !$0.isEmpty }, "refine: one or more candidates per latent")
        let (latentSize, patch, target) = (z.count / batch, l / k, z.data)
        /// Each candidate's squared distance to its latent's target, per latent vector (`[N][K]`).
        func patchDistances(_ candidates: [[Int]], owners: [Int]) -> [[Float]] {
            let encoded = encode(candidates.map { $0.map(Int32.init) }).data  // [N, K, d]
            return owners.enumerated().map { i, b in
                (0..<k).map { j in
                    var sum: Float = 0
                    for e in (j * latentSize / k)..<((j + 1) * latentSize / k) {
                        let difference = encoded[i * latentSize + e] - target[b * latentSize + e]
                        sum += difference * difference
                    }
                    return sum
                }
            }
        }
        // The parallel decoder's log-probabilities at every position.
        let logits = withNoGrad { parallel.logits(parallel(z), embedding: languageModel.wte.weight).data }  // [B, L, V]
        var logSums = [Float](repeating: 0, count: batch * l)
        logSums.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forEach(batch * l) { row in
                let values = logits[(row * v)..<((row + 1) * v)]
                let top = values.max()!
                out[row] = top + log(values.reduce(0) { $0 + exp($1 - top) })
            }
        }
        func logProbability(_ b: Int, _ t: Int, _ token: Int) -> Float { logits[(b * l + t) * v + token] - logSums[b * l + t] }

        // Start from each latent's nearest candidate.
        let flat = passages.flatMap { $0 }.map { Array($0.prefix(l)) }
        let owners = passages.enumerated().flatMap { b, candidates in [Int](repeating: b, count: candidates.count) }
        var current = [[Int]](repeating: [], count: batch)
        var distances = [[Float]](repeating: [.infinity], count: batch)  // [B][K]
        for (i, found) in patchDistances(flat, owners: owners).enumerated() where found.reduce(0, +) < distances[owners[i]].reduce(0, +) {
            (current[owners[i]], distances[owners[i]]) = (flat[i], found)
        }

        var active = Set((0..<batch).filter { distances[$0].reduce(0, +) > 0 })  // an exact match re-encodes to 0
        for _ in 0..<rounds where !active.isEmpty {
            var candidates: [[Int]] = [], candidateOwners: [Int] = []
            for b in active.sorted() {
                let tokens = current[b]
                let worst = distances[b].indices.max { distances[b][$0] < distances[b][$1] }!
                var edits: [(score: Float, position: Int, token: Int)] = []
                // The patch's positions; past the passage's end, the position just after it (an extension).
                let first = min(worst * patch, tokens.count)
                for t in first..<max(first + 1, min((worst + 1) * patch, tokens.count + 1)) where t < l {
                    let here = t < tokens.count ? tokens[t] : endOfText
                    let alternatives = topIndices(logits[((b * l + t) * v)..<((b * l + t + 1) * v)], count: proposals)
                    for token in alternatives where token != here && !(t == 0 && token == endOfText) {
                        edits.append((logProbability(b, t, token), t, token))
                    }
                }
                for edit in edits.sorted(by: { $0.score > $1.score }).prefix(proposals) {
                    var edited = tokens
                    if edit.token == endOfText {
                        edited.removeSubrange(edit.position...)
                    } else if edit.position == tokens.count {
                        edited.append(edit.token)
                    } else {
                        edited[edit.position] = edit.token
                    }
                    candidates.append(edited)
                    candidateOwners.append(b)
                }
            }
            guard !candidates.isEmpty else { break }
            var improved = Set<Int>()
            for (i, found) in patchDistances(candidates, owners: candidateOwners).enumerated()
            where found.reduce(0, +) < distances[candidateOwners[i]].reduce(0, +) {
                let b = candidateOwners[i]
                (current[b], distances[b]) = (candidates[i], found)
                improved.insert(b)
            }
            active = improved.filter { distances[$0].reduce(0, +) > 0 }
        }
        return (current, distances.map { $0.reduce(0, +) })
    }
}

/// Indices of the `count` largest values of `row`, largest first, counted from the slice's start.
private func topIndices(_ row: ArraySlice<Float>, count: Int) -> [Int] {
    var top: [(index: Int, value: Float)] = []
    for (offset, value) in row.enumerated() where top.count < count || value > top[top.count - 1].value {
        let at = top.firstIndex { value > $0.value } ?? top.count
        top.insert((offset, value), at: at)
        if top.count > count { top.removeLast() }
    }
    return top.map(\.index)
}
