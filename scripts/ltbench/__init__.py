"""ltbench: long-tailed CIFAR benchmark library (data, models, strategies, training, metrics, tables).

Importing the package is cheap: torch is only imported by the modules that train.
"""
