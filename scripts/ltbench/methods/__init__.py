"""What a strategy is built from: class-weight formulas, losses, samplers, schedules, weight constraints,
feature synthesis, and the networks with their heads."""
