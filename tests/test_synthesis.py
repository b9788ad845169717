"""Sinkhorn plans, the feature banks and minority synthesis."""

from __future__ import annotations

import pytest
import torch

from ltbench import params
from ltbench.config import STRATEGY_DIR
from ltbench.methods.synthesis import MinoritySynthesizer, sinkhorn, sinkhorn_step

DEFAULTS = params.declaration(STRATEGY_DIR / "minority_synthesis.py").params


def synthesizer(counts, defer_epoch, **settings):
    """A synthesizer with ``minority_synthesis``'s default settings except ``settings``."""
    names = ("bank_size", "tau", "steps", "step", "epsilon", "sinkhorn_iters", "lambda1", "lambda2")
    return MinoritySynthesizer(counts, defer_epoch, **{**{k: DEFAULTS[k] for k in names}, **settings})


def test_sinkhorn_marginals_and_the_obvious_matching():
    cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    groups, valid = torch.tensor([0, 0]), torch.ones(1, 2, dtype=torch.bool)
    plan = sinkhorn(cost, groups, valid, epsilon=0.01, iters=200)
    assert plan.sum(1).tolist() == pytest.approx([0.5, 0.5], abs=1e-5)
    assert plan.sum(0).tolist() == pytest.approx([0.5, 0.5], abs=1e-5)
    assert plan[0, 0].item() == pytest.approx(0.5, abs=1e-4)  # mass stays on the zero-cost diagonal


def test_sinkhorn_solves_each_group_alone_and_ignores_invalid_columns():
    cost = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    groups = torch.tensor([1, 0, 1, 0, 1])  # group 0: rows 1, 3; group 1: rows 0, 2, 4
    valid = torch.tensor([[True, False, True, True], [True, True, True, False]])
    plan = sinkhorn(cost, groups, valid, epsilon=0.1, iters=200)
    assert plan[[1, 3]][:, 1].abs().sum() == 0 and plan[[0, 2, 4]][:, 3].abs().sum() == 0
    assert plan[[1, 3]].sum(1).tolist() == pytest.approx([0.5, 0.5], abs=1e-5)
    assert plan[[1, 3]].sum(0)[[0, 2, 3]].tolist() == pytest.approx([1 / 3] * 3, abs=1e-5)
    assert plan[[0, 2, 4]].sum(1).tolist() == pytest.approx([1 / 3] * 3, abs=1e-5)
    alone = sinkhorn(cost[[0, 2, 4]][:, :3], torch.zeros(3, dtype=torch.long), valid[1:, :3], epsilon=0.1, iters=200)
    assert torch.allclose(plan[[0, 2, 4]][:, :3], alone, atol=1e-6)
    # uniform large entropy: every valid cell gets close to a * b
    flat = sinkhorn(torch.zeros(2, 2), torch.tensor([0, 0]), torch.ones(1, 2, dtype=torch.bool), epsilon=1.0, iters=10)
    assert flat.flatten().tolist() == pytest.approx([0.25] * 4, abs=1e-6)


def test_bank_is_a_per_class_fifo():
    synth = synthesizer(torch.tensor([5.0, 2.0]), defer_epoch=0, bank_size=2)
    synth.observe(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([0, 0, 1]))
    synth.observe(torch.tensor([[4.0]]), torch.tensor([0]))
    assert synth.filled.tolist() == [2, 1]
    assert sorted(synth.bank[0, :, 0].tolist()) == [2.0, 4.0]  # 1.0 was the oldest and left
    assert synth.means()[:, 0].tolist() == [3.0, 3.0]


def test_synthesis_targets_minority_classes_and_moves_towards_their_bank():
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([100.0, 10.0, 1.0])
    synth = synthesizer(counts, defer_epoch=0, bank_size=8, steps=5, step=0.1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    targets = torch.tensor([0] * 8 + [1] * 4 + [2] * 2)
    features = centres[targets] + 0.1 * torch.randn(len(targets), 2, generator=gen)
    synth.observe(features, targets)
    fake, labels = synth.synthesize(features, targets, gen)
    assert fake.shape == (14, 2) and (labels != 0).all()  # the head class has no deficit
    assert (labels == 1).sum() < (labels == 2).sum()  # deficits 90 and 99: class 2 slightly more often
    # after 5 OT steps of 0.1 each sample sits near its class centre, far from the head
    distance = (fake - centres[labels]).norm(dim=1)
    assert distance.max() < 1.0


def test_loss_before_and_after_the_defer_epoch():
    counts = torch.tensor([4.0, 1.0])
    synth = synthesizer(counts, defer_epoch=3, bank_size=4, lambda1=0.5, lambda2=0.5)
    classifier = torch.nn.Linear(2, 2)
    features, targets = torch.randn(4, 2), torch.tensor([0, 0, 0, 1])
    real = torch.tensor(2.0)
    gen = torch.Generator().manual_seed(0)
    assert synth(2, features, targets, classifier, real, gen) is real
    loss = synth(3, features, targets, classifier, real, gen)
    assert loss.requires_grad and loss.item() != pytest.approx(2.0)


def test_the_compiled_sinkhorn_step_of_cuda_gives_the_eager_plans():
    """What CUDA runs (``synthesis.step_for``: the iteration compiled), compiled here on the CPU: the same
    plans as the eager step, to rounding, for several problems with invalid columns."""
    torch.manual_seed(0)
    groups = torch.tensor([0, 0, 1, 2, 2, 2, 1, 0])
    valid = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    cost = torch.rand(8, 4)
    eager = sinkhorn(cost, groups, valid, epsilon=0.1, iters=50, step=sinkhorn_step)
    compiled = sinkhorn(cost, groups, valid, epsilon=0.1, iters=50, step=torch.compile(sinkhorn_step, dynamic=False))
    assert torch.allclose(compiled, eager, atol=1e-6)
    for group in range(3):  # each problem's own marginals: a row of problem c carries 1 / (its rows)
        rows = groups == group
        assert torch.allclose(eager[rows].sum(1), torch.full((int(rows.sum()),), 1.0 / int(rows.sum())), atol=1e-4)


def test_a_failing_compiled_step_falls_back_to_the_eager_one(monkeypatch):
    from ltbench.methods import synthesis

    monkeypatch.setattr(synthesis, "_compiled", {})
    cuda = torch.device("cuda")  # a device object only: nothing runs on it here
    assert synthesis.step_for(torch.device("cpu")) is sinkhorn_step and synthesis.step_for(cuda) is not sinkhorn_step

    def broken(*args):
        raise RuntimeError("no compiler here")

    groups, valid, cost = torch.tensor([0, 0]), torch.ones(1, 2, dtype=torch.bool), torch.rand(2, 2)
    with pytest.warns(UserWarning, match="compiling the Sinkhorn step failed .*no compiler here"):
        plan = sinkhorn(cost, groups, valid, epsilon=0.1, iters=5, step=broken)
    assert torch.equal(plan, sinkhorn(cost, groups, valid, epsilon=0.1, iters=5, step=sinkhorn_step))
    assert synthesis._compiled["failed"] and synthesis.step_for(cuda) is sinkhorn_step  # CUDA goes eager from now
