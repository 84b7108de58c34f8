import NebulaModels
import NebulaTensor
@testable import NebulaDiffusion

/// An untrained system built in milliseconds — K = 4 latent vectors of 2 tokens each, 8 tokens a passage, an
/// autoregressive decoder, end of text 0 — for tests of the mechanics, not the weights.
func tinyDiffusionSystem(vocabulary: Int = 20, generator rng: inout SeededGenerator) -> LatentDiffusion {
    let gpt = GPT(GPTConfig(vocabSize: vocabulary, contextLength: 24, layers: 1, heads: 2, width: 16), generator: &rng)
    var aeConfig = AutoencoderConfig()
    (aeConfig.latents, aeConfig.latentWidth, aeConfig.width, aeConfig.heads) = (4, 8, 16, 2)
    (aeConfig.encoderLayers, aeConfig.decoderLayers, aeConfig.maxLength) = (1, 1, 8)
    (aeConfig.decoder, aeConfig.endOfText) = (.autoregressive, 0)
    let ae = LatentAutoencoder(aeConfig, languageModel: gpt, generator: &rng)
    var config = LatentDiffusionConfig()
    (config.network.latents, config.network.latentWidth, config.network.width) = (4, 8, 16)
    (config.network.layers, config.network.heads) = (1, 2)
    return LatentDiffusion(config: config, denoiser: Denoiser(config.network, generator: &rng), autoencoder: ae)
}
