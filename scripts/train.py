"""Train one (benchmark, strategy, seed) run.

As a plain command (no Snakemake needed):
    python scripts/train.py --benchmark resnet32-cifar10lt --strategy ce --seed 0
reads config.yaml and the materialized subset under results/data/, and writes
history.json and predictions.npz under results/runs/<benchmark>/<strategy>/seed<seed>/.
As the Snakemake rule ``train`` it takes the same from the ``snakemake`` object.
"""

import os

from ltbench import config as cfg
from ltbench.cli import run_parser
from ltbench.logs import redirect_to_log
from ltbench.train import Recipe, RunSpec, run


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
        **paths,
    )


def default_paths(config: dict, benchmark: str, strategy: str, seed: int) -> dict[str, str]:
    """The paths the pipeline uses for this run (a second stage also reads its stage-1 model)."""
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
    parser = run_parser(__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--log", default=None, help="write progress here instead of the terminal")
    args = parser.parse_args(argv)
    config = cfg.load_config(args.config)
    paths = default_paths(config, args.benchmark, args.strategy, args.seed)
    with redirect_to_log(args.log):
        run(make_spec(config, args.benchmark, args.strategy, args.seed, args.threads, paths))


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        paths = {
            "index_path": sm.input.index,
            "cache_path": sm.input.cache,
            "history_path": sm.output.history,
            "predictions_path": sm.output.predictions,
            "model_path": sm.output.model,
            "init_model_path": getattr(sm.input, "init_model", None),
        }
        w = sm.wildcards
        run(make_spec(sm.config, w.benchmark, w.strategy, int(w.seed), sm.threads, paths))
elif __name__ == "__main__":
    main()
