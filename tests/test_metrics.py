"""The metrics record of one run, and each metric against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltbench.evaluation import calibration, priors
from ltbench.evaluation.metrics import (epoch_metrics, extract, gap_groups, head_tail_gap, shot_accuracy, shot_classes,
                             validation_selected, worst_class)


def logits_of(probabilities: list[list[float]]) -> np.ndarray:
    """Logits whose softmax is ``probabilities`` (their logarithms)."""
    return np.log(np.asarray(probabilities))


def test_shot_classes_counts_each_group():
    assert shot_classes([500, 101, 100, 20, 19, 5]) == {"many": 2, "medium": 2, "few": 2}


@pytest.mark.parametrize("params, stage, builds_on", [
    ({}, "train", None), ({"base": "ce", "tau": 1.0}, "posthoc", "ce"), ({"stage1": "wb_stage1"}, "stage2", "wb_stage1"),
])
def test_extract_records_benchmark_stage_and_test_counts(params, stage, builds_on):
    labels = np.array([0, 0, 1, 1, 2, 2])
    history = {
        "benchmark": {"name": "resnet32-tiny", "arch": "resnet32", "dataset": "tiny", "imbalance_ratio": 3.0},
        "strategy": {"name": "s", "module": "m", "params": params, "type": "loss"},
        "seed": 1, "best_test_acc": 50.0, "best_epoch": 2, "final_test_acc": 100 / 3, "epochs": [{}, {}],
        "class_weights": [1.0, 1.0, 1.0], "logit_offsets": None, "provenance": {},
    }
    best, last = np.array([0, 0, 1, 0, 0, 0]), np.array([0, 1, 1, 0, 0, 1])
    predictions = {"labels": labels, "best_pred": best, "last_pred": last,
                   "best_logits": 5.0 * np.eye(3)[best], "last_logits": 5.0 * np.eye(3)[last]}
    record = extract(history, predictions, {"class_counts": [150, 50, 10], "classes": ["a", "b", "c"]})
    assert (record["arch"], record["dataset"], record["imbalance_ratio"]) == ("resnet32", "tiny", 3.0)
    assert (record["stage"], record["builds_on"]) == (stage, builds_on)
    assert [record[k] for k in ("num_classes", "test_images", "best_correct", "last_correct")] == [3, 6, 3, 2]
    assert record["shot_classes"] == {"many": 1, "medium": 1, "few": 1} and record["test_balanced"]
    assert record["best_shot_acc"] == {"many": 100.0, "medium": 50.0, "few": 0.0}
    assert (record["best_worst_class"], record["best_worst_class_acc"], record["best_head_tail_gap"]) == ("c", 0.0, 100.0)
    assert record["best_balanced_acc"] == pytest.approx(50.0) and record["last_balanced_acc"] == pytest.approx(100 / 3)
    assert record["gap_groups"] == ("many", "few")


# ---------------------------------------------------------------- calibration


def test_ece_is_zero_when_confidence_equals_accuracy():
    logits = logits_of([[0.75, 0.25]] * 4)  # every image predicted class 0 with confidence 0.75
    assert calibration.expected_calibration_error(logits, np.array([0, 0, 0, 1])) == pytest.approx(0.0, abs=1e-9)
    assert calibration.expected_calibration_error(logits, np.array([0, 1, 1, 1])) == pytest.approx(50.0)  # |25-75|


def test_ece_weighs_each_bin_by_its_images():
    # bin of 0.75 (11.25/15 -> 12th bin): 2 images, both right: |100 - 75| = 25;
    # bin of 0.9 (13.5/15 -> 14th bin): 2 images, one right: |50 - 90| = 40; ECE = 2/4 * 25 + 2/4 * 40
    logits = logits_of([[0.75, 0.25], [0.25, 0.75], [0.9, 0.1], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    assert calibration.expected_calibration_error(logits, labels) == pytest.approx(32.5)
    diagram = calibration.reliability(logits, labels)
    assert [i for i, n in enumerate(diagram["count"]) if n] == [11, 13] and sum(diagram["count"]) == 4
    assert diagram["accuracy"][13] == pytest.approx(50.0) and diagram["confidence"][11] == pytest.approx(75.0)
    assert diagram["accuracy"][0] is None


def test_nll_and_mean_confidence():
    logits = logits_of([[0.75, 0.25], [0.75, 0.25]])
    labels = np.array([0, 1])
    assert calibration.negative_log_likelihood(logits, labels) == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)
    assert calibration.mean_confidence(logits) == pytest.approx(75.0)
    assert calibration.negative_log_likelihood(np.array([[1000.0, 0.0]]), np.array([0])) == pytest.approx(0.0)  # stable


# ---------------------------------------------------------------- the worst class and the gap


def test_a_class_always_wrong_is_the_worst_class():
    per_class = np.array([80.0, 0.0, 60.0, 0.0])
    assert worst_class(per_class, np.array([True, True, True, True])) == 1  # the first on a tie
    assert worst_class(per_class, np.array([True, False, True, True])) == 3  # a class without test images skipped


@pytest.mark.parametrize("counts, groups", [([500, 50, 10], ("many", "few")), ([500, 150, 50], ("many", "medium")),
                                            ([50, 30, 10], ("medium", "few")), ([500, 200], None)])
def test_gap_groups_take_the_outermost_groups_present(counts, groups):
    assert gap_groups(shot_classes(counts)) == groups


def test_head_tail_gap():
    assert head_tail_gap({"many": 90.0, "medium": 60.0, "few": 0.0}, ("many", "few")) == 90.0
    assert head_tail_gap({"many": 90.0, "medium": 60.0, "few": None}, ("many", "medium")) == 30.0
    assert head_tail_gap({"many": 90.0, "medium": None, "few": None}, None) is None


def test_shot_groups_average_classes_on_an_unbalanced_test_set():
    # many-shot: class 0 (8 test images, all right) and class 1 (2 images, none right): pooled 80, per class 50
    labels = np.array([0] * 8 + [1] * 2 + [2] * 2)
    logits = 5.0 * np.eye(3)[np.array([0] * 8 + [0] * 2 + [2] * 2)]
    scores = epoch_metrics(logits, labels, [500, 400, 10], ["a", "b", "c"])
    assert scores["shot_acc"] == {"many": 50.0, "medium": None, "few": 100.0}
    assert scores["balanced_acc"] == pytest.approx(200 / 3)  # (100 + 0 + 100) / 3; pooled is 10/12
    assert scores["worst_class"] == "b" and scores["head_tail_gap"] == -50.0


def test_validation_selected_shot_groups_average_classes():
    history = {"val_selected": {"epoch": 1, "val_acc": 50.0, "test_acc": 80.0},
               "epochs": [{"per_class_correct": [8, 0, 1]}]}
    chosen = validation_selected(history, np.array([0] * 8 + [1] * 2 + [2]), [500, 400, 10])
    assert chosen["shot_acc"] == {"many": 50.0, "medium": None, "few": 100.0}


def test_shot_accuracy_of_a_group_without_test_images_is_none():
    assert shot_accuracy(np.array([50.0, 0.0]), np.array([True, False]), [500, 5]) == {
        "many": 50.0, "medium": None, "few": None}


# ---------------------------------------------------------------- other test distributions


def test_the_uniform_prior_reproduces_the_balanced_accuracy():
    per_class = [90.0, 60.0, 30.0, 20.0]
    for prior in (priors.long_tailed_prior([400, 100, 50, 10], 1.0), priors.long_tailed_prior([7], 50.0)):
        assert prior == pytest.approx(np.full(len(prior), 1 / len(prior)))
    assert priors.prior_accuracy(per_class, priors.long_tailed_prior([400, 100, 50, 10], 1.0)) == pytest.approx(50.0)


def test_long_tailed_priors_forward_and_backward():
    # ratio 4 over 3 classes: weights 4^0, 4^-1/2, 4^-1 = 1, 1/2, 1/4 -> 4/7, 2/7, 1/7 from the largest class
    counts, per_class = [10, 50, 100], [30.0, 60.0, 90.0]  # the largest class is the last
    forward = priors.long_tailed_prior(counts, 4.0, "forward")
    assert forward == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    assert priors.long_tailed_prior(counts, 4.0, "backward") == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert priors.prior_accuracy(per_class, forward) == pytest.approx((30 + 120 + 360) / 7)
    accs = priors.prior_accuracies(per_class, counts)
    assert list(accs) == ["forward10", "forward50", "backward10", "backward50"]
    assert accs["forward50"] > accs["forward10"] > 60.0 > accs["backward10"] > accs["backward50"]


def test_a_class_always_wrong_counts_by_its_test_prior():
    # class 2 (the tail) always wrong: forward ratio 4 weighs it 1/7, backward 4/7
    per_class, counts = [100.0, 100.0, 0.0], [100, 50, 10]
    assert priors.prior_accuracy(per_class, priors.long_tailed_prior(counts, 4.0)) == pytest.approx(600 / 7)
    assert priors.prior_accuracy(per_class, priors.long_tailed_prior(counts, 4.0, "backward")) == pytest.approx(300 / 7)


def test_non_finite_logits_have_no_calibration():
    scores = epoch_metrics(np.array([[np.nan, 0.0], [1.0, 0.0]]), np.array([0, 0]), [500, 10], ["a", "b"])
    assert [scores[k] for k in ("ece", "nll", "confidence", "reliability")] == [None] * 4
    assert scores["per_class_acc"] == [100.0, 0.0]  # argmax of a nan row is its first class, as the saved prediction


def test_every_reported_metric_is_computed_and_labelled_once():
    """One entry in ``REPORTED`` puts a metric in both forms of the table: it must be one ``epoch_metrics`` computes."""
    from ltbench.evaluation.metrics import EPOCH_METRICS, PRIOR_METRICS, REPORTED
    from ltbench.reporting.table import ROBUSTNESS
    from ltbench.reporting.table_text import LATEX_ROBUSTNESS, ROBUSTNESS_LABELS

    assert set(REPORTED) <= set(EPOCH_METRICS + PRIOR_METRICS)
    assert list(ROBUSTNESS) == list(ROBUSTNESS_LABELS) == [f"best_{name}" for name in REPORTED]
    assert list(LATEX_ROBUSTNESS.values()) == ["ECE", "NLL", "Worst", "Gap", "Fwd 50", "Bwd 50"]
    assert all(metric.better in (-1, 0, 1) for metric in REPORTED.values())
