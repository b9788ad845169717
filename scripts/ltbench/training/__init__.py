"""Training: the trainer, runs packed side by side in one model, checkpoints, devices."""
