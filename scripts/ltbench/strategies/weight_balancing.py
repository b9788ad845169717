"""Weight balancing, stage 2 (Alshammari et al., CVPR 2022): starting from a stage-1 run (config key
``stage1``), retrain only the classifier with a class-balanced loss (effective-number weights, ``beta``
default 0.9999), weight decay (``classifier_weight_decay``, default 0.1) and per-class MaxNorm
(``maxnorm_thresh``, default 0.1), for ``classifier_epochs`` (default 10) at learning rate
``classifier_lr`` (default 0.01) with a cosine schedule: the stage-2 values of their CIFAR-100-LT demo."""

from ltbench import weights

TYPE = "two-stage"


def compute_class_weights(class_counts, num_classes, config):
    """Class-balanced loss weights: effective number with ``beta``."""
    return weights.effective_number(class_counts, float(config.get("beta", 0.9999)))


def configure(class_counts, num_classes, config):
    """Classifier-only fine-tuning with MaxNorm and its own short schedule."""
    return {
        "trainable": "classifier",
        "max_norm": float(config.get("maxnorm_thresh", 0.1)),
        "recipe": {
            "epochs": int(config.get("classifier_epochs", 10)),
            "lr": float(config.get("classifier_lr", 0.01)),
            "weight_decay": float(config.get("classifier_weight_decay", 0.1)),
        },
    }
