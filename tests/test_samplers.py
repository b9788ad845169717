"""Samplers: epoch sizes and sampling frequencies measured over many draws."""

import pytest
import torch

from ltbench.methods.samplers import ClassPowerSampler, InstanceSampler, OverSampler, UnderSampler

LABELS = torch.tensor([0] * 80 + [1] * 15 + [2] * 5)  # counts 80, 15, 5


def class_frequencies(sampler, epochs=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    drawn = torch.cat([LABELS[sampler.epoch(LABELS, g)] for _ in range(epochs)])
    return torch.bincount(drawn, minlength=3).double() / len(drawn)


def test_instance_sampler_is_a_permutation():
    order = InstanceSampler().epoch(LABELS, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(100))


def test_class_balanced_sampling_draws_classes_equally():
    freq = class_frequencies(ClassPowerSampler(0.0))
    assert torch.allclose(freq, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.01)


def test_square_root_sampling_follows_sqrt_counts():
    expected = torch.tensor([80.0, 15.0, 5.0]).sqrt()
    expected = (expected / expected.sum()).double()  # 0.5942, 0.2573, 0.1485
    assert torch.allclose(class_frequencies(ClassPowerSampler(0.5)), expected, atol=0.01)


def test_power_sampler_probabilities_by_hand():
    probs = ClassPowerSampler(0.0).probabilities(LABELS, 3)
    assert probs[0].item() == pytest.approx(1 / 3 / 80) and probs[-1].item() == pytest.approx(1 / 3 / 5)
    assert len(ClassPowerSampler(0.0).epoch(LABELS, torch.Generator())) == 100


def test_oversampling_tops_every_class_up_to_the_head():
    order = OverSampler().epoch(LABELS, torch.Generator().manual_seed(0))
    assert torch.bincount(LABELS[order]).tolist() == [80, 80, 80]
    assert set(range(100)) <= set(order.tolist())  # every original image is kept


def test_undersampling_cuts_every_class_to_the_tail_with_fresh_subsets():
    g = torch.Generator().manual_seed(0)
    a, b = UnderSampler().epoch(LABELS, g), UnderSampler().epoch(LABELS, g)
    assert torch.bincount(LABELS[a]).tolist() == [5, 5, 5]
    assert len(set(a.tolist())) == 15 and set(a.tolist()) != set(b.tolist())
