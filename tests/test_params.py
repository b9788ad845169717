"""Strategy parameters are declared once in each strategy file and checked before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from ltbench import params
from ltbench.config import STRATEGY_DIR, ConfigError, strategy

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
FILES = sorted(p for p in STRATEGY_DIR.glob("*.py") if not p.name.startswith("_"))


def entry(name, **settings):
    """The strategy ``name`` from a copy of config.yaml's strategies with ``settings`` as its entry."""
    return strategy({"strategies": {**CONFIG["strategies"], name: settings}}, name)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_strategy_declares_its_parameters_and_reads_no_undeclared_default(path):
    decl = params.declaration(path)
    text = path.read_text()
    assert "config.get(" not in text  # a default written beside the declaration would be a second one
    for name in decl.params:
        assert text.count(f'"{name}"') >= 2 or name == "defer_epoch", f"{path.name} declares {name}, never reads it"


def test_the_shipped_config_passes_and_gets_the_defaults():
    for name in CONFIG["strategies"]:
        spec = strategy(CONFIG, name)
        params.effective(spec)
    spec = strategy(CONFIG, "ldam_drw")
    assert params.effective(spec) == {
        "max_margin": 0.5, "scale": 30.0, "beta": 0.9999, "defer_epoch": None}


@pytest.mark.parametrize("settings, message", [
    ({"module": "focal", "gama": 2.0}, r"strategy 'bad' \(focal.py\): unknown parameter gama; it knows: beta, form, gamma"),
    ({"module": "focal", "form": "cosine"}, r"parameter form must be one of softmax, sigmoid, got 'cosine'"),
    ({"module": "focal", "gamma": "two"}, r"parameter gamma must be a number, got 'two'"),
    ({"module": "focal", "gamma": float("nan")}, r"parameter gamma must be a number, got nan"),
    ({"module": "focal", "gamma": float("inf")}, r"parameter gamma must be a number, got inf"),
    ({"module": "weight_balancing", "classifier_epochs": 2.5}, r"classifier_epochs must be an integer, got 2.5"),
    ({"module": "weight_balancing"}, r"is a stage-2 strategy; set 'stage1:' to the trained strategy it builds on"),
    ({"module": "weight_balancing", "base": "ce"}, r"set 'stage1:' to the trained strategy it builds on \(not 'base:'\)"),
    ({"module": "logit_adjustment_posthoc"}, r"is a post-hoc correction; set 'base:'"),
    ({"module": "ce", "stage1": "ce"}, r"builds on no other strategy, so 'stage1:' is not one of its keys"),
])
def test_bad_parameters_name_the_strategy_and_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        params.effective(entry("bad", **settings))


@pytest.mark.parametrize("settings, message", [
    ({"module": "inverse_freq", "reduction": "mean"}, r"reduction must be one of weighted_mean, batch_mean, got 'mean'"),
    ({"module": "inverse_freq", "recipe": {"epochs": 10}},
     r"recipe sets epochs, which a strategy cannot set; it may set: lr, momentum, weight_decay, warmup_epochs"),
    ({"module": "inverse_freq", "recipe": {"weight_decay": -1e-4}}, r"recipe weight_decay must be a number >= 0"),
    ({"module": "inverse_freq", "recipe": {"warmup_epochs": 2.5}}, r"recipe warmup_epochs must be an integer >= 0"),
    ({"module": "inverse_freq", "recipe": {"lr": 0}}, r"recipe lr must be above 0"),
    ({"module": "inverse_freq", "recipe": 0.1}, r"recipe must be a mapping of recipe keys to values"),
    ({"module": "logit_adjustment_posthoc", "base": "ce", "reduction": "batch_mean"},
     r"is a post-hoc correction, which trains nothing; reduction cannot apply"),
])
def test_bad_common_keys_name_the_strategy_and_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        params.effective(entry("bad", **settings))


def test_common_keys_join_the_parameters_only_away_from_their_defaults():
    assert params.effective(entry("x", module="inverse_freq", reduction="weighted_mean", recipe={})) == {}
    assert params.effective(entry("x", module="effective_number", reduction="batch_mean",
                                  recipe={"warmup_epochs": 5, "weight_decay": 2e-4})) == {
        "beta": 0.9999, "reduction": "batch_mean", "recipe": {"warmup_epochs": 5, "weight_decay": 2e-4}}


def test_declarations_are_read_without_importing_torch():
    code = ("import sys; sys.path.insert(0, 'scripts'); from ltbench import params, config;"
            "[params.declaration(p) for p in config.STRATEGY_DIR.glob('*.py')];"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
