// Tests of the diffusion layer live here (schedules, objectives, samplers).
