"""A strategy's declared parameters, checked against its config entry before anything runs.

Each strategy file declares, as module-level literals read here from its source (nothing is
imported, so ``snakemake --dry-run`` checks them without torch):

- ``PARAMS = {"name": default, ...}``: every parameter it reads, with its one default. The
  default's type is the parameter's type (a float default accepts ints too); ``None`` marks an
  optional number that the strategy computes or ignores when absent (e.g. ``defer_epoch``); a
  tuple of strings lists the allowed values, the first being the default.
- ``BUILDS_ON = "stage1"`` (stage 2: fine-tunes the final model of the trained strategy
  named by its ``stage1:`` key) or ``"base"`` (post-hoc: adjusts the test logits of the trained
  strategy named by ``base:``); absent for a strategy trained from scratch.

Besides its file's parameters, every trained strategy's entry may set the ``COMMON`` keys, which the
framework applies (``ltbench.strategies.resolve``), so a strategy file needs no code for them:

- ``reduction``: how the loss averages over a batch (``ltbench.methods.losses.REDUCTIONS``): ``weighted_mean``
  (the default, sum w l / sum w) or ``batch_mean`` (sum w l / B);
- ``recipe``: this strategy's own values of the recipe keys in ``RECIPE_KEYS`` (for example
  ``{weight_decay: 0.0002, warmup_epochs: 5}``), over the config's ``recipe`` and over what the
  strategy's file sets itself.

A common key at its default (``weighted_mean``, an empty ``recipe``) is left out of the run's
parameters, so stating the default retrains nothing.

``effective`` returns the parameters a run uses (the entry's values over the defaults) or raises
``ConfigError`` naming the strategy, the key and the keys it knows; ``ltbench.config.strategy``
calls it, so the rules (at ``snakemake --dry-run``) and the plain commands check alike.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltbench.config import ConfigError, Strategy

UPSTREAM_KEYS = ("stage1", "base")
REDUCTIONS = ("weighted_mean", "batch_mean")  # how a loss averages over a batch (ltbench.methods.losses); the first the default
COMMON = {"reduction": REDUCTIONS, "recipe": {}}
# The recipe keys a strategy entry may set for its own runs, each with a value of its type; every value >= 0.
RECIPE_KEYS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0}


@dataclass(frozen=True)
class Declaration:
    """What a strategy file declares: parameter defaults and what it builds on."""

    params: dict[str, Any]
    builds_on: str | None = None


def declaration(source: Path) -> Declaration:
    """``PARAMS`` and ``BUILDS_ON`` of the strategy file ``source`` (empty and None where absent)."""
    found = {}
    for node in ast.parse(source.read_bytes(), filename=str(source)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("PARAMS", "BUILDS_ON"):
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    raise ConfigError(f"{source.name}: {name} must be a literal (numbers, strings, None)") from None
    builds_on = found.get("BUILDS_ON")
    if builds_on not in (None, *UPSTREAM_KEYS):
        raise ConfigError(f"{source.name}: BUILDS_ON must be one of {', '.join(UPSTREAM_KEYS)}, got {builds_on!r}")
    return Declaration(dict(found.get("PARAMS", {})), builds_on)


def _kind(default: Any) -> str:
    """The type a value must have, named for messages."""
    if isinstance(default, tuple):
        return "one of " + ", ".join(default)
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, int):
        return "an integer"
    return "a number"


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (see the module docstring); numbers must be finite."""
    if isinstance(default, tuple):
        return value in default
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return isinstance(value, int) if isinstance(default, int) else True


def of_module(module: Any) -> Declaration:
    """The declaration of an imported strategy module (its ``PARAMS`` and ``BUILDS_ON`` attributes)."""
    return Declaration(dict(getattr(module, "PARAMS", {})), getattr(module, "BUILDS_ON", None))


def _recipe(where: str, value: Any) -> dict[str, Any]:
    """A strategy entry's ``recipe`` after checking its keys (``RECIPE_KEYS``) and values."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: recipe must be a mapping of recipe keys to values, got {value!r}")
    unknown = sorted(set(value) - set(RECIPE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: recipe sets {', '.join(map(str, unknown))}, which a strategy cannot set;"
                          f" it may set: {', '.join(RECIPE_KEYS)}")
    for key, number in value.items():
        if not _fits(number, RECIPE_KEYS[key]) or number < 0:
            raise ConfigError(f"{where}: recipe {key} must be {_kind(RECIPE_KEYS[key])} >= 0, got {number!r}")
    if value.get("lr") == 0:
        raise ConfigError(f"{where}: recipe lr must be above 0")
    return dict(value)


def common(spec: Strategy, decl: Declaration | None = None) -> dict[str, Any]:
    """The ``COMMON`` keys ``spec`` sets, checked, without those at their default (see the module docstring).
    A post-hoc correction trains nothing, so it sets none."""
    decl = decl or declaration(spec.source)
    where = f"strategy {spec.name!r} ({spec.source.name})"
    found = {k: spec.params[k] for k in COMMON if k in spec.params}
    if found and decl.builds_on == "base":
        raise ConfigError(f"{where}: is a post-hoc correction, which trains nothing; {', '.join(found)} cannot apply")
    if "reduction" in found and not _fits(found["reduction"], REDUCTIONS):
        raise ConfigError(f"{where}: reduction must be {_kind(REDUCTIONS)}, got {found['reduction']!r}")
    if "recipe" in found:
        found["recipe"] = _recipe(where, found["recipe"])
    return {k: v for k, v in found.items() if v != (REDUCTIONS[0] if k == "reduction" else {})}


def effective(spec: Strategy, decl: Declaration | None = None) -> dict[str, Any]:
    """The parameters of ``spec`` with its file's defaults filled in (upstream keys left out) and the
    ``COMMON`` keys it sets (``common``), after checking every key's name and type, and that the entry
    names an upstream exactly when the file builds on one (``ltbench.config.strategy`` checks that the
    upstream is a trained strategy). ``decl`` defaults to the declaration read from the strategy's file."""
    decl = decl or declaration(spec.source)
    where = f"strategy {spec.name!r} ({spec.source.name})"
    given = {k: v for k, v in spec.params.items() if k not in UPSTREAM_KEYS and k not in COMMON}
    unknown = sorted(set(given) - set(decl.params))
    if unknown:
        known = ", ".join(sorted(decl.params)) or "none"
        raise ConfigError(f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)};"
                          f" it knows: {known} (and {', '.join(COMMON)}, which every strategy takes)")
    for key, value in given.items():
        if not _fits(value, decl.params[key]):
            raise ConfigError(f"{where}: parameter {key} must be {_kind(decl.params[key])}, got {value!r}")
    keys = [k for k in UPSTREAM_KEYS if k in spec.params]
    if decl.builds_on is None and keys:
        raise ConfigError(f"{where}: builds on no other strategy, so '{keys[0]}:' is not one of its keys")
    if decl.builds_on is not None and keys != [decl.builds_on]:
        role = "a stage-2 strategy" if decl.builds_on == "stage1" else "a post-hoc correction"
        raise ConfigError(f"{where}: is {role}; set '{decl.builds_on}:' to the trained strategy it builds on"
                          + (f" (not '{keys[0]}:')" if keys else ""))
    defaults = {k: v[0] if isinstance(v, tuple) else v for k, v in decl.params.items()}
    return {**defaults, **given, **common(spec, decl)}
