"""Shot groups, the field's split of classes by training images: many > 100, medium 20-100, few < 20.
Shared by training (its log), metrics, the table and the figures; pure Python."""

from __future__ import annotations

from typing import Sequence

MANY_ABOVE = 100
FEW_BELOW = 20
GROUPS = ("many", "medium", "few")


def shot_group(count: int) -> str:
    """'many' if count > MANY_ABOVE, 'few' if count < FEW_BELOW, else 'medium'."""
    if count > MANY_ABOVE:
        return "many"
    if count < FEW_BELOW:
        return "few"
    return "medium"


def group_accuracy(correct: Sequence[float], tested: Sequence[float], class_counts: Sequence[int]) -> dict[str, float | None]:
    """Per shot group: 100 x (correctly classified test images of its classes) / (test images of its
    classes), from per-class ``correct`` and ``tested`` counts; None for a group without test images."""
    out = {}
    for name in GROUPS:
        members = [c for c, n in enumerate(class_counts) if shot_group(n) == name]
        total = sum(float(tested[c]) for c in members)
        out[name] = 100.0 * sum(float(correct[c]) for c in members) / total if total else None
    return out
