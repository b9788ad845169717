"""Shot groups, the field's split of classes by training images: many > 100, medium 20-100, few < 20.
Shared by training (its log), metrics, the table and the figures; pure Python."""

from __future__ import annotations

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
