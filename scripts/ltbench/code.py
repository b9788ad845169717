"""What a piece of code means, for rerun decisions: pure Python (no torch), shared by the rules
(each rule family's ``code`` param, rules/common.smk) and the training checkpoints' fingerprints.

- ``meaning(path)``: a Python file's abstract syntax tree with docstrings dropped, so that
  comments, docstrings and formatting do not count; any other file's bytes. ``ltbench`` modules
  are named without their wing (``ltbench.training.losses`` means ``ltbench.training.losses``, the
  wings being the sub-packages in ``WINGS``) and an import of several names counts as one import
  per name, so that moving a module from one wing to another changes no meaning.
- ``closure(entry)``: the entry script and every ``ltbench`` module it imports, directly or
  through other ``ltbench`` modules (read from ``import`` statements, nothing is executed).
  Modules loaded by name at run time (strategies) are not in it: they are inputs of their own.
  A file that means nothing (a package's ``__init__.py`` that holds only its docstring) counts
  for nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]  # the folder holding ltbench/ and the entry scripts
PACKAGE = "ltbench"
# The sub-packages that group ltbench's modules by concern; a module's name in a meaning leaves its wing out.
WINGS = ("datasets", "methods", "evaluation", "training", "reporting")


def _drop_docstrings(tree: ast.AST) -> ast.AST:
    """Remove the docstring of the module and of every class and function in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def unwinged(name: str) -> str:
    """A module's name without its wing: ``ltbench.training.losses`` -> ``ltbench.training.losses``,
    ``ltbench.training`` -> ``ltbench``; any other name as it is."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return name
    return ".".join(part for i, part in enumerate(parts) if not (i == 1 and part in WINGS))


class _Unwing(ast.NodeTransformer):
    """``unwinged`` module names in every import, and ``from ltbench... import a, b`` as one import per name."""

    def visit_Import(self, node: ast.Import) -> ast.Import:
        for alias in node.names:
            alias.name = unwinged(alias.name)
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | list[ast.AST]:
        if node.level or not node.module or unwinged(node.module).split(".")[0] != PACKAGE:
            return node
        module = unwinged(node.module)
        return [ast.ImportFrom(module=module, names=[alias], level=0) for alias in node.names]


def meaning(path: str | Path) -> bytes:
    """What ``path`` means to the program: for Python, ``ast.dump`` of its tree without docstrings
    (no line numbers), with ``ltbench`` imports unwinged and one per name (``_Unwing``); for anything
    else, its bytes."""
    text = Path(path).read_bytes()
    if Path(path).suffix != ".py":
        return text
    tree = _Unwing().visit(_drop_docstrings(ast.parse(text, filename=str(path))))
    return ast.dump(tree).encode()


def means_nothing(path: str | Path) -> bool:
    """Whether ``path`` is a Python file with nothing but a docstring (a package's bare ``__init__.py``)."""
    return Path(path).suffix == ".py" and meaning(path) == ast.dump(ast.Module(body=[ast.Pass()], type_ignores=[])).encode()


def _version(path: str | Path) -> tuple[str, int, int]:
    """A cache key that changes whenever the file does."""
    stat = Path(path).stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=None)
def _digest(version: tuple[str, int, int]) -> str:
    return hashlib.sha256(meaning(version[0])).hexdigest()


def digest(path: str | Path) -> str:
    """sha256 of ``meaning(path)`` (cached while the file is unchanged)."""
    return _digest(_version(path))


def _module_file(name: str, root: Path) -> Path | None:
    """The file of module ``name`` (``ltbench.x.y``) under ``root``, if it is one of ours."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, root: Path) -> set[Path]:
    """The ``ltbench`` files that ``path`` imports (with their packages' ``__init__.py``)."""
    return _imports_of(_version(path), root)


@functools.lru_cache(maxsize=None)
def _imports_of(version: tuple[str, int, int], root: Path) -> set[Path]:
    path = Path(version[0])
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # from pkg import module
    files = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a package's __init__ runs on import of its modules
            found = _module_file(".".join(parts[:i]), root)
            if found:
                files.add(found)
    return files


def closure(entry: str | Path, root: Path | None = None) -> list[Path]:
    """``entry`` and every ``ltbench`` file it imports, transitively, in path order (modules are
    looked up under ``root``, by default ``SCRIPTS``)."""
    root = root or SCRIPTS
    seen, todo = set(), [Path(entry).resolve()]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path, root) - seen)
    return sorted(seen)


def _name(path: Path) -> str:
    """``path`` relative to ``SCRIPTS`` where it lies below it (so a moved checkout keeps its identity), its
    wing left out (``ltbench/training/losses.py`` -> ``ltbench/training/losses.py``)."""
    path = Path(path).resolve()
    if not path.is_relative_to(SCRIPTS):
        return path.as_posix()
    parts = path.relative_to(SCRIPTS).parts
    return "/".join(p for i, p in enumerate(parts) if not (i == 1 and parts[0] == PACKAGE and p in WINGS))


def fingerprint_lines(paths: list[str | Path]) -> str:
    """``<digest>  <name>`` per file, in the given order (names relative to ``SCRIPTS``)."""
    return "".join(f"{digest(p)}  {_name(p)}\n" for p in paths)


def identity(*entries: str | Path) -> str:
    """sha256 of the meaning of ``entries`` and of every ``ltbench`` module they import: what a rule
    family's (or a strategy's) code is, for rerun decisions and checkpoint stamps."""
    files = sorted({f for e in entries for f in closure(e) if not means_nothing(f)}, key=_name)
    return hashlib.sha256(fingerprint_lines(files).encode()).hexdigest()
