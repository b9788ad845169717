"""Code identity for rerun decisions: meaning over bytes, derived import closures, checkpoint stamps."""

from __future__ import annotations

import shutil

from conftest import REPO
from ltbench import checkpoint, code

SOURCE = '''"""Module docstring."""

import math


def area(r):
    """Docstring."""
    return math.pi * r ** 2  # a comment
'''


def test_comments_docstrings_and_formatting_do_not_change_the_meaning(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    before = code.digest(path)
    path.write_text(SOURCE.replace("# a comment", "# another").replace('"""Docstring."""', '"""Other text."""')
                    .replace("math.pi * r ** 2", "math.pi  *  r**2") + "\n\n")
    assert code.digest(path) == before
    path.write_text(SOURCE.replace("** 2", "** 3"))
    assert code.digest(path) != before
    other = tmp_path / "notes.txt"  # other files: their bytes
    other.write_text("a")
    first = code.digest(other)
    other.write_text("a ")
    assert code.digest(other) != first


def test_closure_follows_ltbench_imports_only(tmp_path):
    pkg = tmp_path / "ltbench"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "unused.py", "sub/__init__.py", "sub/c.py"):
        (pkg / name).write_text("")
    (pkg / "a.py").write_text("import numpy\nfrom ltbench import b\n")
    (pkg / "b.py").write_text("from ltbench.sub.c import thing\n")
    entry = tmp_path / "entry.py"
    entry.write_text("import os\nfrom ltbench.a import x\n")
    found = [p.relative_to(tmp_path).as_posix() for p in code.closure(entry, tmp_path)]
    assert found == ["entry.py", "ltbench/__init__.py", "ltbench/a.py", "ltbench/b.py", "ltbench/sub/__init__.py",
                     "ltbench/sub/c.py"]


def test_the_training_closure_holds_what_training_imports():
    names = {p.relative_to(code.SCRIPTS).as_posix() for p in code.closure(code.SCRIPTS / "train.py")}
    assert {"train.py", "ltbench/train.py", "ltbench/models.py", "ltbench/replicas.py", "ltbench/checkpoint.py",
            "ltbench/code.py", "ltbench/augment.py", "ltbench/data.py"} <= names
    assert not {"ltbench/plots.py", "ltbench/table.py", "ltbench/metrics.py"} & names


def test_a_checkpoint_survives_edits_that_do_not_change_the_run(tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    shutil.copytree(REPO / "scripts", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "SCRIPTS", scripts)
    strategy = scripts / "ltbench/strategies/ldam_drw.py"
    description = {"seed": 0}
    stamp = checkpoint.fingerprint(description, strategy)
    edit = lambda rel, old, new: (scripts / rel).write_text((scripts / rel).read_text().replace(old, new, 1))  # noqa: E731
    edit("ltbench/plots.py", "import", "import os\nimport")  # another family's code
    edit("ltbench/train.py", "import math", "import math  # a comment")
    edit("ltbench/losses.py", '"""', '"""Reworded. ')
    assert checkpoint.fingerprint(description, strategy) == stamp
    assert checkpoint.fingerprint({"seed": 1}, strategy) != stamp
    edit("ltbench/weights.py", "weights * len(counts)", "weights * 2 * len(counts)")  # the strategy's weights change
    assert checkpoint.fingerprint(description, strategy) != stamp
