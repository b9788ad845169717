"""The house: ltbench's modules grouped by concern into wings, each importing only from the floors below it."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from conftest import REPO
from ltbench import code

LTBENCH = REPO / "scripts/ltbench"
# From the ground up: each floor may import from itself and the floors below, never from above.
FLOORS = ["core", "datasets", "methods", "strategies", "evaluation", "training", "reporting"]
TOP_LEVEL_MODULES = 12  # the most modules beside the wings


def floor_of(path: Path) -> str:
    """The floor of an ltbench file: its wing or ``strategies``, else ``core`` (a top-level module)."""
    parts = path.relative_to(LTBENCH).parts
    return parts[0] if len(parts) > 1 else "core"


def imported_floors(path: Path) -> set[str]:
    """The floors of the ltbench modules that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "ltbench" and len(parts) > 1:
                found.add(parts[1] if parts[1] in FLOORS else "core")
    return found


def test_every_wing_is_a_floor_and_holds_only_modules():
    wings = sorted(p.name for p in LTBENCH.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert sorted(wings) == sorted(set(FLOORS) - {"core"})
    assert set(code.WINGS) == set(FLOORS) - {"core", "strategies"}
    for wing in code.WINGS:  # a wing's __init__ hands nothing on: its modules are imported by their own names
        assert code.means_nothing(LTBENCH / wing / "__init__.py"), wing


def test_no_module_imports_from_a_floor_above_its_own():
    upward = []
    for path in sorted(LTBENCH.rglob("*.py")):
        mine = FLOORS.index(floor_of(path))
        upward += [f"{path.relative_to(LTBENCH)} imports from {f}" for f in imported_floors(path)
                   if FLOORS.index(f) > mine]
    assert upward == []


def test_few_top_level_modules_and_every_module_name_once():
    top = [p.stem for p in LTBENCH.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= TOP_LEVEL_MODULES, top
    names = Counter(p.stem for p in LTBENCH.rglob("*.py") if p.name != "__init__.py")
    # a module's meaning names it without its wing (ltbench.code.unwinged): two of one name would be one
    assert [name for name, n in names.items() if n > 1] == []
