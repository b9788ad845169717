"""Evaluation: per-run metrics from predictions, calibration, test priors, shot groups, statistics, post-hoc corrections."""
