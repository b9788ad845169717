"""Code identity for rerun decisions: meaning over bytes, derived import closures, checkpoint stamps."""

from __future__ import annotations

import shutil

from conftest import REPO
from ltbench.training import checkpoint
from ltbench import code

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


def test_a_module_means_the_same_in_any_wing_and_imported_with_others(tmp_path):
    """The wing a module lives in is not part of what code means: ``from ltbench.methods import a, b`` means
    ``from ltbench import a`` and ``from ltbench import b``, whatever wings a and b live in."""
    one = tmp_path / "one.py"
    one.write_text("from ltbench import schedules, weights\nfrom ltbench.methods.losses import LDAM\nimport os\n")
    moved = tmp_path / "moved.py"
    moved.write_text("from ltbench.methods import schedules\nfrom ltbench.reporting import weights\n"
                     "from ltbench.evaluation.losses import LDAM\nimport os\n")
    assert code.meaning(one) == code.meaning(moved)
    moved.write_text("from ltbench.methods import weights, schedules\nfrom ltbench.evaluation.losses import LDAM\n"
                     "import os\n")
    assert code.meaning(one) != code.meaning(moved)  # the order of the imports is code
    assert code.unwinged("ltbench.training.train") == "ltbench.train" and code.unwinged("torch.nn") == "torch.nn"
    bare = tmp_path / "__init__.py"
    bare.write_text('"""A wing: only its docstring."""\n')
    assert code.means_nothing(bare) and not code.means_nothing(one)


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
    assert {"train.py", "ltbench/training/train.py", "ltbench/training/spec.py", "ltbench/training/provenance.py",
            "ltbench/training/packing.py", "ltbench/training/outputs.py", "ltbench/methods/models.py",
            "ltbench/training/replicas.py", "ltbench/training/checkpoint.py", "ltbench/code.py",
            "ltbench/datasets/augment.py", "ltbench/datasets/data.py"} <= names
    assert not {"ltbench/reporting/plots.py", "ltbench/reporting/table.py", "ltbench/evaluation/metrics.py"} & names


def test_a_checkpoint_survives_edits_that_do_not_change_the_run(tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    shutil.copytree(REPO / "scripts", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "SCRIPTS", scripts)
    strategy = scripts / "ltbench/strategies/ldam_drw.py"
    description = {"seed": 0}
    stamp = checkpoint.fingerprint(description, strategy)
    edit = lambda rel, old, new: (scripts / rel).write_text((scripts / rel).read_text().replace(old, new, 1))  # noqa: E731
    edit("ltbench/reporting/plots.py", "import", "import os\nimport")  # another family's code
    edit("ltbench/training/train.py", "import math", "import math  # a comment")
    edit("ltbench/methods/losses.py", '"""', '"""Reworded. ')
    assert checkpoint.fingerprint(description, strategy) == stamp
    assert checkpoint.fingerprint({"seed": 1}, strategy) != stamp
    edit("ltbench/methods/weights.py", "weights * len(counts)", "weights * 2 * len(counts)")  # the strategy's weights change
    assert checkpoint.fingerprint(description, strategy) != stamp
