"""Grids in the config (ltbench.grids): lists of ratios, architectures or parameter values expand into
named entries that validate, train and rerun like any other."""

from __future__ import annotations

import pytest
import yaml

from conftest import make_workflow, tiny_config
from test_results_io import results_cli
from ltbench import grids
from ltbench.config import ConfigError


def test_benchmark_grids_expand_per_combination():
    benchmarks, sweeps = grids.expand_benchmarks({
        "resnet8-c10": {"arch": "resnet8", "dataset": "cifar10", "imbalance_ratio": [10, 12.5, 100]},
        "c100": {"arch": ["resnet8", "resnet20"], "dataset": "cifar100", "imbalance_ratio": [10, 100]},
        "plain": {"arch": "resnet32", "dataset": "cifar10", "imbalance_ratio": 100},
    })
    assert list(benchmarks) == ["resnet8-c10-r10", "resnet8-c10-r12.5", "resnet8-c10-r100", "c100-resnet8-r10",
                                "c100-resnet8-r100", "c100-resnet20-r10", "c100-resnet20-r100", "plain"]
    assert benchmarks["c100-resnet20-r10"] == {"arch": "resnet20", "dataset": "cifar100", "imbalance_ratio": 10}
    assert sweeps["resnet8-c10-r12.5"] == {"grid": "resnet8-c10", "arch": "resnet8", "imbalance_ratio": 12.5}
    assert "plain" not in sweeps


def test_strategy_grids_expand_per_value_and_keep_their_module():
    strategies, sweeps = grids.expand_strategies({
        "ce": {}, "effective_number": {"beta": [0.9, 0.9999]},
        "ldam": {"module": "ldam_drw", "max_margin": [0.3, 0.5], "scale": [30.0, 1]},
        "la_posthoc": {"module": "logit_adjustment_posthoc", "base": "ce", "tau": [0.5, 1.0]},
    })
    assert list(strategies) == ["ce", "effective_number-beta0.9", "effective_number-beta0.9999",
                                "ldam-max_margin0.3-scale30", "ldam-max_margin0.3-scale1",
                                "ldam-max_margin0.5-scale30", "ldam-max_margin0.5-scale1",
                                "la_posthoc-tau0.5", "la_posthoc-tau1"]
    assert strategies["effective_number-beta0.9"] == {"beta": 0.9, "module": "effective_number"}
    assert strategies["la_posthoc-tau1"] == {"module": "logit_adjustment_posthoc", "base": "ce", "tau": 1.0}
    assert sweeps["ldam-max_margin0.5-scale1"] == {"grid": "ldam", "params": {"max_margin": 0.5, "scale": 1}}


def test_the_matrix_names_a_grid_for_all_its_entries_and_expansion_is_idempotent():
    config = {"benchmarks": {"b": {"arch": "resnet8", "dataset": "d", "imbalance_ratio": [10, 100]}},
              "strategies": {"ce": {}, "en": {"module": "effective_number", "beta": [0.9, 0.99]}},
              "matrix": {"benchmarks": ["b"], "strategies": ["ce", "en"]}}
    grids.expand(config)
    assert config["matrix"] == {"benchmarks": ["b-r10", "b-r100"], "strategies": ["ce", "en-beta0.9", "en-beta0.99"]}
    assert config["sweeps"]["strategies"]["en-beta0.99"] == {"grid": "en", "params": {"beta": 0.99}}
    again = yaml.safe_load(yaml.safe_dump(config))
    assert grids.expand(again) == config  # a config written out and read again (a GPU call's) is unchanged


@pytest.mark.parametrize("config, message", [
    ({"strategies": {"en": {"beta": []}}}, "strategy 'en': beta is an empty list"),
    ({"strategies": {"en": {"beta": [0.9, 0.90]}}}, "strategy 'en': beta lists 0.9 more than once"),
    ({"strategies": {"en": {"beta": [[0.9]]}}}, "a grid's values must be single values"),
    ({"strategies": {"en": {"beta": [0.9]}, "en-beta0.9": {}}}, "expands to 'en-beta0.9', which the config defines"),
    ({"strategies": {"ce": {"x": [1, 2]}, "la": {"base": "ce"}}}, "strategy 'la' builds on 'ce', a grid; name one"),
    ({"strategies": {"ce": {"x": [1, 2]}}, "table": {"reference": "ce"}}, "table: reference 'ce' is a grid"),
    ({"benchmarks": {"b": {"arch": "resnet8", "dataset": "d", "imbalance_ratio": []}}},
     "benchmark 'b': imbalance_ratio is an empty list"),
])
def test_malformed_grids_are_named(config, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        grids.expand(config)


def grid_config(betas):
    """The tiny workflow with a ratio grid of ResNet-8 on the tiny CIFAR-10 and a beta grid of effective_number."""
    config = tiny_config()
    config["benchmarks"] = {"resnet8-tiny": {"arch": "resnet8", "dataset": "tiny10", "imbalance_ratio": [2, 3]}}
    config["strategies"] = {"ce": {}, "en": {"module": "effective_number", "beta": betas}}
    return config


def trained(wf) -> set[str]:
    """The train jobs' wildcards a dry run plans."""
    return {w for rule, w in wf.planned_jobs() if rule == "train"}


def test_a_grid_trains_each_entry_and_reruns_exactly(tmp_path):
    wf = make_workflow(tmp_path, grid_config([0.9, 0.99]))
    runs = lambda betas: {f"benchmark=resnet8-tiny-r{r}, strategy={s}, seed=0"  # noqa: E731
                          for r in (2, 3) for s in ("ce", *(f"en-beta{b}" for b in betas))}
    assert trained(wf) == runs(["0.9", "0.99"])
    wf.snakemake("--cores", "2", *(f"results/runs/resnet8-tiny-r{r}/{s}/seed0/history.json" for r in (2, 3)
                                   for s in ("ce", "en-beta0.9", "en-beta0.99")))
    assert trained(wf) == set()
    figures = ["results/plots/sweeps/benchmarks/resnet8-tiny.png", "results/plots/sweeps/strategies/en.png"]
    wf.snakemake("--cores", "2", *figures, "results/table.md")
    assert all((wf.root / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    table = (wf.root / "results/table.md").read_text()
    assert "resnet8-tiny-r2 all" in table and "| en-beta0.99 |" in table
    assert "### resnet8-tiny\n\n| strategy | ratio 2 | ratio 3 |" in table  # the ratio grid's cells side by side
    # publish makes the same figures and table from the published runs
    results_cli(wf, "publish")
    assert all((wf.root / "docs/results" / f.removeprefix("results/")).read_bytes() == (wf.root / f).read_bytes()
               for f in figures)
    assert "### resnet8-tiny\n\n| strategy | ratio 2 | ratio 3 |" in (wf.root / "docs/results/table.md").read_text()
    wf.config_path.write_text(yaml.safe_dump({**yaml.safe_load(wf.config_path.read_text()),
                                              "strategies": grid_config([0.9, 0.99, 0.999])["strategies"],
                                              "matrix": {"benchmarks": ["resnet8-tiny"], "strategies": ["ce", "en"]}}))
    assert trained(wf) == runs(["0.999"]) - runs([])  # a value added: only its runs
    wf.config_path.write_text(yaml.safe_dump({**yaml.safe_load(wf.config_path.read_text()),
                                              "strategies": grid_config([0.99])["strategies"]}))
    assert trained(wf) == set()  # a value removed: nothing trains (and the file's keys, now sorted, retrain nothing)


def test_a_wrong_value_in_a_grid_is_named_at_dry_run(tmp_path):
    wf = make_workflow(tmp_path, grid_config([0.9, "high"]))
    proc = wf.snakemake("--dry-run", check=False)
    assert proc.returncode != 0
    assert "strategy 'en-betahigh' (effective_number.py): parameter beta must be a number, got 'high'" in proc.stdout


def test_names_follow_the_values_not_the_order_of_keys_and_the_matrix_has_no_duplicates():
    strategies, _ = grids.expand_strategies({"ldam": {"module": "ldam_drw", "scale": [30.0], "max_margin": [0.3]}})
    assert list(strategies) == ["ldam-max_margin0.3-scale30"]
    config = {"strategies": {"en": {"module": "effective_number", "beta": [0.9, 0.99]}},
              "matrix": {"strategies": ["en-beta0.9", "en"]}}
    assert grids.expand(config)["matrix"]["strategies"] == ["en-beta0.9", "en-beta0.99"]


def test_a_sweep_over_named_choices_is_drawn_in_the_grids_order():
    from ltbench.reporting import sweeps

    origins = {f"focal-form{form}": {"grid": "focal", "params": {"form": form}} for form in ("softmax", "sigmoid")}
    records = [{"benchmark": "b", "strategy": name, "best_balanced_acc": acc, "num_classes": 10}
               for name, acc in zip([*origins, "ce"], (40.0, 42.0, 38.0))]
    fig = sweeps.param_figure(records, origins, ["b"], "ce", "focal")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["softmax", "sigmoid"]
    assert any(list(line.get_ydata()) == [40.0, 42.0] for line in ax.lines)  # the grid's line, in its order
