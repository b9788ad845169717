"""The README's example strategy works as documented."""

from __future__ import annotations

import re
import sys
import types

import pytest

from conftest import REPO
from ltbench import strategies
from ltbench.config import Strategy


def test_readme_example_strategy(monkeypatch):
    readme = (REPO / "README.md").read_text()
    code = re.search(r"`scripts/ltbench/strategies/my_weights.py`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    module = types.ModuleType("ltbench.strategies.my_weights")
    exec(compile(code, "my_weights.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    out = strategies.resolve(Strategy("my_weights", "my_weights", {"power": 0.5}), [100, 10, 1], {})
    # (111 / (3 * n)) ** 0.5 for n = 100, 10, 1
    assert out.weights.tolist() == pytest.approx([0.6082763, 1.9235384, 6.0827625], rel=1e-5)
