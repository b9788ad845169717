"""Weight balancing, stage 1 (Alshammari et al., CVPR 2022): plain cross-entropy with a larger,
tuned weight decay (``weight_decay``, default 5e-3, their CIFAR-100-LT value) on our recipe otherwise."""

TYPE = "two-stage"
PARAMS = {"weight_decay": 5e-3}


def configure(class_counts, num_classes, config):
    """Override the recipe's weight decay."""
    return {"recipe": {"weight_decay": float(config["weight_decay"])}}
