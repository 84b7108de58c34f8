// Neural-network modules, optimizers, checkpoints.
