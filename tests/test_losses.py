"""Losses against hand-computed values."""

import math

import pytest
import torch

from ltbench.methods.losses import LDAM, CrossEntropy, Focal, SigmoidFocal, SoftmaxBCE, ldam_margins, packed_cross_entropy
from ltbench.training.provenance import describe

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
TARGETS = torch.tensor([0, 2])
ONES = torch.ones(3)


def log_softmax_target(row, target):
    return row[target] - math.log(sum(math.exp(v) for v in row))


def test_focal_with_gamma_zero_is_cross_entropy():
    assert Focal(0.0)(LOGITS, TARGETS, ONES).item() == pytest.approx(CrossEntropy()(LOGITS, TARGETS, ONES).item())


def test_focal_by_hand():
    # p0 = softmax([2,0,-1])[0] = 0.843795, p1 = softmax([.5,.5,0])[2] = 0.274068
    logp = [log_softmax_target([2.0, 0.0, -1.0], 0), log_softmax_target([0.5, 0.5, 0.0], 2)]
    terms = [-(1 - math.exp(lp)) ** 2 * lp for lp in logp]
    assert Focal(2.0)(LOGITS, TARGETS, ONES).item() == pytest.approx(sum(terms) / 2, rel=1e-6)
    # class weights 3 (class 0) and 1 (class 2): weighted mean sum(w l) / sum(w)
    w = torch.tensor([3.0, 1.0, 1.0])
    assert Focal(2.0)(LOGITS, TARGETS, w).item() == pytest.approx((3 * terms[0] + terms[1]) / 4, rel=1e-6)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        Focal(-1.0)


@pytest.mark.parametrize("loss", [CrossEntropy(), Focal(2.0), LDAM(torch.tensor([0.1, 0.2, 0.3]), scale=10.0)],
                         ids=["ce", "focal", "ldam"])
def test_batch_mean_divides_by_the_batch_size_and_weighted_mean_by_the_weights(loss):
    w = torch.tensor([3.0, 1.0, 0.5])
    per_sample = torch.stack([loss(LOGITS[i : i + 1], TARGETS[i : i + 1], ONES) for i in range(2)])
    weighted = w[TARGETS] * per_sample
    assert loss(LOGITS, TARGETS, w).item() == pytest.approx((weighted.sum() / w[TARGETS].sum()).item(), rel=1e-6)
    batch_mean = loss.reduced("batch_mean")
    assert batch_mean(LOGITS, TARGETS, w).item() == pytest.approx((weighted.sum() / 2).item(), rel=1e-6)
    # unlike the weighted mean, the batch mean scales with the weights
    assert batch_mean(LOGITS, TARGETS, 2 * w).item() == pytest.approx(2 * batch_mean(LOGITS, TARGETS, w).item())
    assert loss.reduction == "weighted_mean" and batch_mean.reduced("weighted_mean").reduction == "weighted_mean"
    # the default is not written into the run's description, so runs described before keep their description
    assert "reduction" not in describe(batch_mean.reduced("weighted_mean"))
    assert "reduction='batch_mean'" in describe(batch_mean)
    with pytest.raises(ValueError, match="unknown reduction 'sum'"):
        loss.reduced("sum")


def test_packed_cross_entropy_reduces_each_run_its_own_way():
    torch.manual_seed(0)
    logits, targets, w = torch.randn(3, 6, 4), torch.randint(0, 4, (3, 6)), torch.rand(3, 4) + 0.1
    batch_mean = torch.tensor([True, False, True])
    alone = [CrossEntropy().reduced("batch_mean" if b else "weighted_mean")(logits[r], targets[r], w[r])
             for r, b in enumerate(batch_mean)]
    assert torch.allclose(packed_cross_entropy(logits, targets, w, batch_mean), torch.stack(alone), atol=1e-6)


def test_ldam_margins_by_hand():
    # n^-1/4 for 10000, 16, 1: 0.1, 0.5, 1 -> scaled so the largest is 0.5
    margins = ldam_margins(torch.tensor([10000.0, 16.0, 1.0]), max_margin=0.5)
    assert margins.tolist() == pytest.approx([0.05, 0.25, 0.5])


def test_ldam_subtracts_the_target_margin_then_scales():
    margins = torch.tensor([0.1, 0.2, 0.3])
    cosines = torch.tensor([[0.5, 0.1, -0.2]])
    got = LDAM(margins, scale=10.0)(cosines, torch.tensor([0]), ONES).item()
    expected = -log_softmax_target([10 * (0.5 - 0.1), 10 * 0.1, 10 * -0.2], 0)
    assert got == pytest.approx(expected, rel=1e-5)  # float32


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def test_softmax_bce_by_hand():
    # mean over B x C terms of w_{y_i} * BCE(softmax(z_i)_c, [c == y_i])
    w = [3.0, 1.0, 2.0]
    terms = []
    for row, target in zip(LOGITS.tolist(), TARGETS.tolist()):
        for c, p in enumerate(softmax(row)):
            terms.append(w[target] * -(math.log(p) if c == target else math.log(1 - p)))
    got = SoftmaxBCE()(LOGITS, TARGETS, torch.tensor(w)).item()
    assert got == pytest.approx(sum(terms) / 6, rel=1e-6)


def test_cui_sigmoid_focal_by_hand():
    # (1/B) sum_i sum_c w_{y_i} (1 - q_ic)^gamma * -log q_ic, q_ic = sigmoid(+-z_ic) of the right answer
    w, gamma = [3.0, 1.0, 2.0], 2.0
    total = 0.0
    for row, target in zip(LOGITS.tolist(), TARGETS.tolist()):
        for c, z in enumerate(row):
            q = 1 / (1 + math.exp(-z)) if c == target else 1 / (1 + math.exp(z))
            total += w[target] * (1 - q) ** gamma * -math.log(q)
    got = SigmoidFocal(gamma)(LOGITS, TARGETS, torch.tensor(w)).item()
    assert got == pytest.approx(total / 2, rel=1e-5)
