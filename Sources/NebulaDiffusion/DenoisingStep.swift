import NebulaModels
import NebulaTensor

/// Rows of one generation at one point of its loop: what the denoiser needs for them in a denoising step.
public struct DenoisingRows {
    /// The noisy latents `[n, K, d]`.
    public var z: Tensor
    /// Their time (1: pure noise, 0: data).
    public var time: Float
    /// The previous step's x0 estimates `[n, K, d]`, the self-conditioning input (nil at the first step).
    public var previousX0: Tensor?
    /// The preceding passages' latents `[n, K, d]` (nil: unconditional).
    public var condition: Tensor?
    /// Classifier-free guidance weight (1: none).
    public var guidance: Float
    /// The latent vectors held (infilling), which a denoiser with a mask channel also reads (nil: none).
    public var known: KnownLatents?

    public init(z: Tensor, time: Float, previousX0: Tensor?, condition: Tensor?, guidance: Float, known: KnownLatents? = nil) {
        self.z = z
        self.time = time
        self.previousX0 = previousX0
        self.condition = condition
        self.guidance = guidance
        self.known = known
    }

    /// Under guidance the rows go through the denoiser twice: with their condition and without.
    var isGuided: Bool { condition != nil && guidance != 1 }
}

extension LatentDiffusion {
    /// The denoiser's outputs for every group of rows — each at its own time, with its own condition and
    /// guidance — from one batched pass: `uncond + w·(cond − uncond)` for a guided group, whose rows go in
    /// twice. The library's loop calls it with one group, the server with every waiting job; a group gets
    /// the same output either way.
    public func modelOutputs(_ groups: [DenoisingRows]) -> [Tensor] {
        let usesContext = denoiser.config.contextWidth > 0 && groups.contains { $0.condition != nil }
        let usesKnown = denoiser.config.knownLatents && groups.contains { $0.known != nil }
        var zs: [Tensor] = [], selfConditions: [Tensor] = [], contexts: [Tensor] = [], knowns: [Tensor] = []
        var times: [Float] = [], dropContext: [Bool] = [], sizes: [Int] = []
        for group in groups {
            let n = group.z.shape[0]
            for copy in 0..<(group.isGuided && usesContext ? 2 : 1) {
                zs.append(group.z)
                selfConditions.append(group.previousX0 ?? Tensor.zeros(group.z.shape))
                times += [Float](repeating: group.time, count: n)
                if usesContext {
                    contexts.append(group.condition ?? Tensor.zeros(group.z.shape))
                    // The unconditional copy of a guided group, and an unconditional group, see the null condition.
                    dropContext += [Bool](repeating: group.condition == nil || copy == 1, count: n)
                }
                if usesKnown {
                    let d = group.z.shape[2]
                    knowns.append(group.known?.denoiserInput ?? Tensor.zeros([n, group.z.shape[1], d + 1]))
                }
                sizes.append(n)
            }
        }
        func joined(_ parts: [Tensor]) -> Tensor { parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0) }
        let output = withNoGrad {
            denoiser(
                joined(zs), times: times, selfCondition: config.network.selfConditioning ? joined(selfConditions) : nil,
                context: usesContext ? joined(contexts) : nil, dropContext: usesContext ? dropContext : nil,
                known: usesKnown ? joined(knowns) : nil)  // [rows, K, d]
        }
        var parts = (sizes.count == 1 ? [output] : output.split(axis: 0, sizes: sizes))[...]
        return groups.map { group in
            let conditional = parts.removeFirst()
            guard group.isGuided && usesContext else { return conditional }
            return classifierFreeGuidance(conditional: conditional, unconditional: parts.removeFirst(), weight: group.guidance)
        }
    }
}
