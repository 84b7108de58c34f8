// Latent diffusion: noise schedules, objectives, samplers, the generation pipeline.
