import os
import re
import sys

from snakemake.utils import validate

validate(config, schema="schemas/config.schema.yaml")

# ltbench.config is pure Python (no torch): reading names the same way as the scripts.
sys.path.insert(0, os.path.join(workflow.basedir, "scripts"))
from ltbench import config as cfg

# The table's columns and rows: the ``matrix`` lists if given, else everything configured.
BENCHMARKS = config.get("matrix", {}).get("benchmarks", list(config["benchmarks"]))
STRATEGIES = config.get("matrix", {}).get("strategies", list(config["strategies"]))
SEEDS = list(config["seeds"])
PACK_SEEDS = config["train"].get("pack_seeds", False)
# The table's baseline row, which the other strategies are compared with.
TABLE_REFERENCE = config.get("table", {}).get("reference", "ce")
RUN = cfg.RUN_DIR  # results/runs/{benchmark}/{strategy}/seed{seed}
for _name in BENCHMARKS:
    cfg.benchmark(config, _name)  # a ConfigError here names the unknown dataset
for _name in STRATEGIES:
    cfg.strategy(config, _name)  # ... or the missing strategy file
# How each configured strategy's runs are made (a second stage may build on one outside the matrix).
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


def library(*modules):
    """Files of the ltbench package; rules list the ones they import, since Snakemake does not track imports."""
    return [source(f"scripts/ltbench/{m}") for m in modules]


COMMON_CODE = library("__init__.py", "config.py", "io.py", "logs.py")
# ltbench.data and what it imports (sources, splits, images): training imports it to load the cache.
DATA_LIBRARY = library("data.py", "sources.py", "splits.py", "images.py")
DATA_CODE = COMMON_CODE + DATA_LIBRARY + [source("scripts/materialize.py")]
TRAIN_CODE = (
    COMMON_CODE
    + library(
        "train.py",
        "models.py",
        "augment.py",
        "devices.py",
        "checkpoint.py",
        "constraints.py",
        "losses.py",
        "samplers.py",
        "schedules.py",
        "synthesis.py",
        "weights.py",
        "replicas.py",
        "strategies/__init__.py",
    )
    + DATA_LIBRARY
    + library("cli.py")
    + [source("scripts/train.py")]
)
POSTHOC_CODE = (
    COMMON_CODE
    + library(
        "posthoc.py",
        "strategies/__init__.py",
        "losses.py",
        "samplers.py",
        "weights.py",
        "cli.py",
    )
    + [source("scripts/posthoc.py")]
)
METRICS_CODE = (
    COMMON_CODE + library("metrics.py") + [source("scripts/extract_metrics.py")]
)
TABLE_CODE = (
    COMMON_CODE
    + library("table.py", "table_text.py", "stats.py", "metrics.py")
    + [source("scripts/make_table.py")]
)
PLOT_CODE = COMMON_CODE + library("plots.py", "metrics.py")
# The library files each rule family's script imports (rule ``code`` hashes them into one input).
CODE = {
    "data": DATA_CODE,
    "train": TRAIN_CODE,
    "posthoc": POSTHOC_CODE,
    "metrics": METRICS_CODE,
    "table": TABLE_CODE,
    **{
        name: PLOT_CODE + [source(f"scripts/{name}.py")]
        for name in ("plot_table", "plot_benchmark", "plot_run", "plot_dataset")
    },
}


def code(family):
    """The fingerprint of a rule family's code (rules/code.smk), one input instead of its files."""
    return f"results/code/{family}.sha256"


def code_files(wildcards):
    return CODE[wildcards.family]


def data_dir(wildcards):
    """The materialized subset a benchmark trains on."""
    data_id = cfg.benchmark(config, wildcards.benchmark).data_id
    return cfg.DATA_DIR.format(data_id=data_id)


def data_index(wildcards):
    return f"{data_dir(wildcards)}/index.json"


def data_cache(wildcards):
    return f"{data_dir(wildcards)}/cache.npz"


def dataset_params(wildcards):
    """What a subset depends on besides code: source format and location, subset seed, and the
    entry's image size and split settings where it sets them."""
    entry = cfg.dataset(config, wildcards.dataset)
    optional = ("image_size", "test_fraction", "test_per_class")
    return {
        "format": entry["format"],
        "location": entry.get("path", config["data"]["root"]),
        "subset_seed": config["data"]["subset_seed"],
        **{key: entry[key] for key in optional if key in entry},
    }


def strategy_file(wildcards):
    """The one file that defines the strategy."""
    return source(
        os.path.relpath(
            cfg.strategy(config, wildcards.strategy).source, workflow.basedir
        )
    )


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
    """The runs a second-stage or post-hoc job builds on (its ``stage1`` or ``base``), one per seed it trains."""
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


def strategy_params(wildcards):
    """The strategy's module and parameters; a change reruns only this strategy."""
    spec = cfg.strategy(config, wildcards.strategy)
    return {"module": spec.module, **spec.params}


def benchmark_params(wildcards):
    """Architecture, dataset and ratio of the benchmark."""
    return config["benchmarks"][wildcards.benchmark]


def train_gpus(wildcards):
    """One GPU per training job unless the config pins training to the CPU."""
    return 0 if config["train"]["device"] == "cpu" else 1


def all_runs(pattern):
    """``pattern`` expanded over every (benchmark, strategy, seed)."""
    return expand(pattern, benchmark=BENCHMARKS, strategy=STRATEGIES, seed=SEEDS)


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
        + expand(rules.plot_benchmark.output.per_class, benchmark=BENCHMARKS)
        + expand(rules.plot_benchmark.output.shots, benchmark=BENCHMARKS)
        + [
            rules.plot_dataset.output.histogram.format(dataset=dataset, ratio=ratio)
            for dataset, ratio in subsets
        ]
    )
