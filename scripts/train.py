"""Train (benchmark, strategy, seed) runs: one, or several side by side in one process.

As a plain command (no Snakemake needed):
    python scripts/train.py --benchmark resnet32-cifar10lt --strategy ce [--strategy inverse_freq ...] \
        --seed 0 [--seed 1 ...]
reads config.yaml and the materialized subset under results/data/, and writes history.json,
predictions.npz and model.pt under results/runs/<benchmark>/<strategy>/seed<seed>/ for every
strategy and seed. The runs train in one model where they share the recipe, the head and the
epoch length (static weights, logit offsets, margin and focal losses, deferred weights, samplers
that keep the epoch length); the others train in groups of their own, one group after another.
As the Snakemake rule ``train`` (or ``stage2``) it takes the same from the ``snakemake`` object:
one seed, or with ``train.pack_seeds`` every configured seed.
"""

import os
import sys

from ltbench import cli
from ltbench import config as cfg
from ltbench import progress
from ltbench import strategies
from ltbench.logs import redirect_to_log
from ltbench.training.spec import Recipe, RunSpec
from ltbench.training.train import run_pack


def make_spec(config: dict, benchmark: str, strategy: str, seed: int, threads: int, paths: dict) -> RunSpec:
    """A ``RunSpec`` from the config and the data/output paths (index, cache, history, predictions, model)."""
    return RunSpec(
        benchmark=cfg.benchmark(config, benchmark),
        strategy=cfg.strategy(config, strategy),
        seed=int(seed),
        recipe=Recipe(**config["recipe"]),
        device=config["train"]["device"],
        threads=threads,
        checkpoint_path=cfg.CHECKPOINT.format(benchmark=benchmark, strategy=strategy, seed=seed),
        checkpoint_every=config["train"]["checkpoint_every"],
        compile=config["train"].get("compile") or None,
        precision=config["train"].get("precision", "auto"),
        memory_format=config["train"].get("memory_format", "auto"),
        strategy_timeout=config["train"].get("strategy_timeout", strategies.TIMEOUT),
        **paths,
    )


def default_paths(config: dict, benchmark: str, strategy: str, seed: int) -> dict[str, str]:
    """The paths the pipeline uses for this run (a stage-2 run also reads its stage-1 model)."""
    data = cfg.DATA_DIR.format(data_id=cfg.benchmark(config, benchmark).data_id)
    out = cfg.RUN_DIR.format(benchmark=benchmark, strategy=strategy, seed=seed)
    stage1 = cfg.strategy(config, strategy).params.get("stage1")
    return {
        "init_model_path": stage1 and cfg.RUN_DIR.format(benchmark=benchmark, strategy=stage1, seed=seed) + "/model.pt",
        "index_path": f"{data}/index.json",
        "cache_path": f"{data}/cache.npz",
        "history_path": f"{out}/history.json",
        "predictions_path": f"{out}/predictions.npz",
        "model_path": f"{out}/model.pt",
    }


def main(argv: list[str] | None = None) -> None:
    parser = cli.run_parser(__doc__, several=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--log", default=None, help="write progress here instead of the terminal")
    args = parser.parse_args(argv)
    config = cli.read_config(args)
    specs = [make_spec(config, args.benchmark, strategy, seed, args.threads,
                       default_paths(config, args.benchmark, strategy, seed))
             for strategy in dict.fromkeys(args.strategy) for seed in dict.fromkeys(args.seed)]
    with redirect_to_log(args.log):
        run_pack(specs)


def snakemake_paths(sm, seeds: list[int]) -> list[dict[str, str]]:
    """Per seed, the paths of a ``train``/``stage2`` job (its outputs are lists when it trains several seeds)."""
    def each(files) -> list[str]:
        return [files] if isinstance(files, str) else list(files)

    init = getattr(sm.input, "init_model", None)
    columns = {
        "history_path": each(sm.output.history),
        "predictions_path": each(sm.output.predictions),
        "model_path": each(sm.output.model),
        "init_model_path": each(init) if init else [None] * len(seeds),
    }
    return [{"index_path": sm.input.index, "cache_path": sm.input.cache, **{k: v[i] for k, v in columns.items()}}
            for i in range(len(seeds))]


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        # one seed (its wildcard), or every configured seed when the job trains them side by side
        w = sm.wildcards
        seeds = [int(w.seed)] if "seed" in w.keys() else [int(seed) for seed in sm.config["seeds"]]
        run_pack([make_spec(sm.config, w.benchmark, w.strategy, seed, sm.threads, paths)
                  for seed, paths in zip(seeds, snakemake_paths(sm, seeds))])
        matrix = progress.line()
    if matrix:  # on the workflow's console, beside Snakemake's count of all jobs
        print(matrix, file=sys.stderr)
elif __name__ == "__main__":
    main()
