import functools
import os
import re
import sys

from snakemake.utils import validate

validate(config, schema="schemas/config.schema.yaml")

# ltbench.config is pure Python (no torch): reading names the same way as the scripts.
sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))
from ltbench import code as codeid
from ltbench import config as cfg

cfg.check_finite(config)  # NaN passes every schema bound
from ltbench import grids

grids.expand(
    config
)  # lists of ratios, architectures or parameter values: one entry per value
from ltbench import params as strategy_params_of
from ltbench import progress
from ltbench.datasets.sources import identity as source_identity

# The table's columns and rows: the ``matrix`` lists if given, else everything configured.
BENCHMARKS, STRATEGIES = cfg.matrix(config)
SEEDS = list(config["seeds"])
PACK_SEEDS = config["train"].get("pack_seeds", False)
# The table's baseline row, which the other strategies are compared with.
TABLE_REFERENCE = cfg.table_reference(config)
RUN = cfg.RUN_DIR  # results/runs/{benchmark}/{strategy}/seed{seed}
SUBSET = cfg.DATA_ID  # {dataset}-lt{ratio}
SUBSET_DIR = cfg.DATA_DIR.format(data_id=SUBSET)  # results/data/{dataset}-lt{ratio}
for _name in BENCHMARKS:
    cfg.benchmark(config, _name)  # a ConfigError here names the unknown dataset
cfg.check_recipe(config["recipe"])
for _name in config["strategies"]:
    # ... or the missing strategy file, an unknown or mistyped parameter, a missing upstream
    _own = strategy_params_of.effective(cfg.strategy(config, _name))
    # ... or a warm-up longer than the epochs in the recipe the strategy's entry sets
    cfg.check_recipe(
        {**config["recipe"], **_own.get("recipe", {})}, f"strategy {_name!r}: recipe"
    )
for _name in STRATEGIES:
    cfg.strategy(config, _name)
# Grids (ltbench.grids) with entries in the matrix: a benchmark grid over several ratios gets a ratio
# sweep figure, a strategy grid a parameter sweep figure.
SWEEPS = grids.origins(config)
# {ratio grid: its benchmarks}: the ratio sweep figures' runs and the table's ratio sections
RATIO_GRID_MEMBERS = grids.ratio_grid_members(SWEEPS, BENCHMARKS)
RATIO_GRIDS = list(RATIO_GRID_MEMBERS)
PARAM_GRIDS = grids.param_grids(SWEEPS, STRATEGIES)
# How each configured strategy's runs are made (a stage-2 strategy may build on one outside the matrix).
TRAINED = [s for s in config["strategies"] if cfg.strategy(config, s).stage == "train"]
STAGE2 = [s for s in config["strategies"] if cfg.strategy(config, s).stage == "stage2"]
POSTHOC = [
    s for s in config["strategies"] if cfg.strategy(config, s).stage == "posthoc"
]


def alternatives(names):
    """A regex matching exactly one of ``names`` (nothing if there are none)."""
    return "|".join(re.escape(str(n)) for n in names) or "(?!)"


wildcard_constraints:
    benchmark=alternatives(BENCHMARKS),
    strategy=alternatives(STRATEGIES),
    dataset=alternatives(config["datasets"]),
    seed=r"\d+",
    ratio=rf"{cfg.NATURAL}|\d+(\.\d+)?",


def source(path):
    """A workflow file, relative to the working directory (stable when run from the repository root)."""
    return os.path.relpath(os.path.join(workflow.basedir, path))


# Code identity (ltbench.code): each rule family's entry script and every ltbench module it
# imports, by meaning (comments, docstrings and formatting do not count). A rule takes it as a
# param, so a real change reruns exactly the jobs whose code changed; `snakemake -n` names the
# param as the reason.
ENTRY_SCRIPTS = {
    "data": "materialize",
    "train": "train",
    "posthoc": "posthoc",
    "metrics": "extract_metrics",
    "table": "make_table",
    "table_html": "table_html",
    "plot_benchmark": "plot_benchmark",
    "plot_run": "plot_run",
    "plot_dataset": "plot_dataset",
    "plot_sweeps": "plot_sweeps",
}


@functools.cache
def code(family):
    """The identity of a rule family's code (the closure of ``scripts/<entry>.py``)."""
    entry = os.path.join(workflow.basedir, "scripts", f"{ENTRY_SCRIPTS[family]}.py")
    return codeid.identity(entry)


def data_dir(wildcards):
    """The materialized subset a benchmark trains on."""
    data_id = cfg.benchmark(config, wildcards.benchmark).data_id
    return cfg.DATA_DIR.format(data_id=data_id)


def data_index(wildcards):
    return f"{data_dir(wildcards)}/index.json"


def data_cache(wildcards):
    return f"{data_dir(wildcards)}/cache.npz"


def dataset_params(wildcards):
    """What a subset depends on besides code: the source's format and content (not its location:
    moving the data reruns nothing), the subset seed, and the entry's image size, split and
    validation settings where it sets them."""
    entry = cfg.dataset(config, wildcards.dataset)
    optional = (
        "image_size",
        "test_fraction",
        "test_per_class",
        "validation_per_class",
        "validation_from_subset",
    )
    location = entry.get("path", config["data"]["root"])
    return {
        "format": entry["format"],
        "content": source_identity(entry["format"], location),
        "subset_seed": config["data"]["subset_seed"],
        **{key: entry[key] for key in optional if key in entry},
    }


def run_file(name):
    """A file of one run: ``results/runs/{benchmark}/{strategy}/seed{seed}/<name>``."""
    return f"{RUN}/{name}"


def train_outputs():
    """The training rules' outputs: one run's history, predictions and final model, or with
    ``train.pack_seeds`` every seed's of a (benchmark, strategy), as lists in seed order.
    """
    names = {
        "history": "history.json",
        "predictions": "predictions.npz",
        "model": "model.pt",
    }
    if not PACK_SEEDS:
        return {key: run_file(name) for key, name in names.items()}
    return {
        key: expand(run_file(name), seed=SEEDS, allow_missing=True)
        for key, name in names.items()
    }


def train_job_file(folder, suffix):
    """A training job's log or benchmark file: per run, or per (benchmark, strategy) when packed."""
    job = "{benchmark}/{strategy}/" + ("seeds" if PACK_SEEDS else "seed{seed}")
    return f"{folder}/{job}{suffix}"


def upstream_runs(wildcards):
    """The runs a stage-2 or post-hoc job builds on (its ``stage1`` or ``base``), one per seed it trains."""
    upstream = cfg.strategy(config, wildcards.strategy).upstream
    seeds = [wildcards.seed] if hasattr(wildcards, "seed") else SEEDS
    return [
        RUN.format(benchmark=wildcards.benchmark, strategy=upstream, seed=seed)
        for seed in seeds
    ]


def stage1_models(wildcards):
    return [f"{run}/model.pt" for run in upstream_runs(wildcards)]


def base_history(wildcards):
    return f"{upstream_runs(wildcards)[0]}/history.json"


def base_predictions(wildcards):
    return f"{upstream_runs(wildcards)[0]}/predictions.npz"


def canonical(value):
    """``value`` with the keys of every dict in sorted order. Snakemake compares a job's params with those
    of its last run as written, so a param in canonical order reruns nothing when a config file only
    lists the same keys in another order."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def strategy_params(wildcards):
    """The strategy's module, its parameters with their declared defaults, what it builds on, and the
    identity of its file's code: a change to any reruns only this strategy (and what builds on it).
    """
    spec = cfg.strategy(config, wildcards.strategy)
    return canonical(
        {
            "module": spec.module,
            "params": strategy_params_of.effective(spec),
            "upstream": spec.upstream,
            "code": codeid.identity(spec.source),
        }
    )


def benchmark_params(wildcards):
    """Architecture, dataset and ratio of the benchmark."""
    return canonical(config["benchmarks"][wildcards.benchmark])


def recipe_params(wildcards):
    """The training recipe (config.yaml ``recipe``), without its options at their neutral value."""
    return canonical(cfg.recipe_identity(config["recipe"]))


def train_gpus(wildcards):
    """One GPU per training job unless the config pins training to the CPU."""
    return 0 if config["train"]["device"] == "cpu" else 1


def all_runs(pattern):
    """``pattern`` expanded over every (benchmark, strategy, seed)."""
    return expand(pattern, benchmark=BENCHMARKS, strategy=STRATEGIES, seed=SEEDS)


# A run's report label leads with its strategy's position in the matrix, so that the report, which
# sorts labels as text, lists runs in config order.
STRATEGY_LABELS = {
    name: f"{i:0{len(str(len(STRATEGIES)))}d}. {name}"
    for i, name in enumerate(STRATEGIES, start=1)
}


def run_labels(figure):
    """The report labels of a per-run ``figure`` (strategy by its matrix position, seed, figure)."""
    return lambda wildcards: {
        "strategy": STRATEGY_LABELS[wildcards.strategy],
        "seed": wildcards.seed,
        "figure": figure,
    }


def ratio_sweep_metrics(wildcards):
    """metrics.json of every run of a benchmark grid's entries in the matrix."""
    return expand(
        rules.metrics.output.metrics,
        benchmark=RATIO_GRID_MEMBERS[wildcards.grid],
        strategy=STRATEGIES,
        seed=SEEDS,
    )


def param_sweep_metrics(wildcards):
    """metrics.json of every run of a strategy grid's entries and of the table's reference strategy."""
    members = grids.members(SWEEPS, "strategies", wildcards.grid, STRATEGIES)
    reference = [TABLE_REFERENCE] if TABLE_REFERENCE in STRATEGIES else []
    return expand(
        rules.metrics.output.metrics,
        benchmark=BENCHMARKS,
        strategy=members + reference,
        seed=SEEDS,
    )


def param_sweep_origins(wildcards):
    """What each entry of a strategy grid in the matrix was made from (``config["sweeps"]``)."""
    return {
        name: SWEEPS["strategies"][name]
        for name in grids.members(SWEEPS, "strategies", wildcards.grid, STRATEGIES)
    }


def final_targets():
    """The results table, and the report's HTML table and figures (rules/report.smk)."""
    subsets = sorted(
        {
            (spec.dataset, cfg.format_ratio(spec.imbalance_ratio))
            for spec in (cfg.benchmark(config, name) for name in BENCHMARKS)
        }
    )
    return (
        [*rules.table.output, rules.table_html.output.html]
        + all_runs(rules.plot_run.output.curves)
        + all_runs(rules.plot_run.output.confusion)
        + expand(rules.plot_benchmark.output.curves, benchmark=BENCHMARKS)
        + expand(rules.plot_benchmark.output.per_class, benchmark=BENCHMARKS)
        + expand(rules.plot_benchmark.output.shots, benchmark=BENCHMARKS)
        + expand(rules.plot_benchmark.output.robustness, benchmark=BENCHMARKS)
        + [
            rules.plot_dataset.output.histogram.format(dataset=dataset, ratio=ratio)
            for dataset, ratio in subsets
        ]
        + expand(rules.plot_ratio_sweep.output.figure, grid=RATIO_GRIDS)
        + expand(rules.plot_param_sweep.output.figure, grid=PARAM_GRIDS)
    )


def table_summary(path):
    """The main results table of ``path`` (results/table.md), to print when the workflow ends."""
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    main = text.split("## Best-epoch test accuracy (%)", 1)[-1].split("\n## ", 1)[0]
    return (
        f"\nResults ({path}): best-epoch test accuracy (%), mean ± std (n seeds){main}"
    )


def planned_trainings(dag):
    """The history.json of every run this invocation will train, from scratch or as stage 2 (for ltbench.progress)."""
    return [
        str(out)
        for job in dag.needrun_jobs()
        if job.rule.name in ("train", "stage2")
        for out in job.output
        if str(out).endswith("history.json")
    ]
