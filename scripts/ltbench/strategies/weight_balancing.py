"""Weight balancing, stage 2 (Alshammari et al., CVPR 2022): starting from a stage-1 run (config key
``stage1``), retrain only the classifier with a class-balanced loss (effective-number weights, ``beta``
default 0.9999), weight decay (``classifier_weight_decay``, default 0.1) and per-class MaxNorm
(``maxnorm_thresh``, default 0.1), for ``classifier_epochs`` (default 10) at learning rate
``classifier_lr`` (default 0.01) with a cosine schedule: the stage-2 values of their CIFAR-100-LT demo."""

from ltbench import weights

TYPE = "two-stage"
PARAMS = {
    "beta": 0.9999, "classifier_epochs": 10, "classifier_lr": 0.01, "classifier_weight_decay": 0.1,
    "maxnorm_thresh": 0.1,
}
BUILDS_ON = "stage1"


def compute_class_weights(class_counts, num_classes, config):
    """Class-balanced loss weights: effective number with ``beta``."""
    return weights.effective_number(class_counts, float(config["beta"]))


def configure(class_counts, num_classes, config):
    """Classifier-only fine-tuning with MaxNorm and its own short schedule."""
    return {
        "trainable": "classifier",
        "max_norm": float(config["maxnorm_thresh"]),
        "recipe": {
            "epochs": int(config["classifier_epochs"]),
            "lr": float(config["classifier_lr"]),
            "weight_decay": float(config["classifier_weight_decay"]),
        },
    }
