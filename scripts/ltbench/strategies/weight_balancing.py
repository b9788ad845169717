"""Weight balancing, stage 2 (Alshammari et al., CVPR 2022): from the final model of a stage-1 run
(config key ``stage1``), retrain only the classifier for ``classifier_epochs`` at learning rate
``classifier_lr`` with weight decay ``classifier_weight_decay``, per-class MaxNorm
(``maxnorm_thresh``) and effective-number class weights (``beta``), all at the values of their
CIFAR-100-LT demo (defaults in ``PARAMS``).

By default it follows their code (ShadeAlsha/LTR-weight-balancing, demo 2): the "softmax"
class-balanced loss (``classifier_loss: bce``, ltbench.methods.losses.SoftmaxBCE), batch 64, and the
cosine schedule stepped before each epoch (``classifier_schedule: cosine_shifted``, so the last
epoch runs at lr 0). ``classifier_loss: ce`` (weighted cross-entropy), ``classifier_schedule:
cosine`` and a batch of 128 give our earlier variant, whose gradient is far larger (about 90x by an
estimate, not a measurement) against the same weight decay.
"""

from ltbench.methods import weights
from ltbench.methods.losses import CrossEntropy, SoftmaxBCE

TYPE = "two-stage"
PARAMS = {
    "beta": 0.9999, "classifier_epochs": 10, "classifier_lr": 0.01, "classifier_weight_decay": 0.1,
    "maxnorm_thresh": 0.1, "classifier_loss": ("bce", "ce"), "classifier_batch_size": 64,
    "classifier_schedule": ("cosine_shifted", "cosine"),
}
BUILDS_ON = "stage1"
LOSSES = {"bce": SoftmaxBCE, "ce": CrossEntropy}


def compute_class_weights(class_counts, num_classes, config):
    """Class-balanced loss weights: effective number with ``beta``."""
    return weights.effective_number(class_counts, float(config["beta"]))


def configure(class_counts, num_classes, config):
    """Classifier-only fine-tuning with MaxNorm, its loss and its own short schedule."""
    return {
        "trainable": "classifier",
        "max_norm": float(config["maxnorm_thresh"]),
        "loss": LOSSES[config["classifier_loss"]](),
        "recipe": {
            "epochs": int(config["classifier_epochs"]),
            "lr": float(config["classifier_lr"]),
            "weight_decay": float(config["classifier_weight_decay"]),
            "batch_size": int(config["classifier_batch_size"]),
            "lr_schedule": config["classifier_schedule"],
        },
    }
