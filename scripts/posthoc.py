"""A post-hoc strategy's run from its base run (rule ``posthoc``), e.g.
    python scripts/posthoc.py --benchmark resnet32-cifar10lt --strategy la_posthoc --seed 0
"""


import numpy as np

from ltbench import cli
from ltbench import config as cfg
from ltbench import strategies
from ltbench.io import atomic_path, read_json, write_json
from ltbench.logs import redirect_to_log
from ltbench.evaluation.posthoc import adjust_run


def posthoc(config: dict, strategy: str, base_history: str, base_predictions: str, history_path: str,
            predictions_path: str) -> None:
    """Adjust the base run's logits and write this strategy's history and predictions."""
    spec = cfg.strategy(config, strategy)
    base = read_json(base_history)
    context = strategies.context(base["benchmark"], base["recipe"]["epochs"])
    with np.load(base_predictions) as npz:
        predictions = {key: npz[key] for key in npz.files}
    history, arrays = adjust_run(spec, base, predictions, context)
    with atomic_path(predictions_path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    write_json(history_path, history)
    tag = f"{base['benchmark']['name']}/{strategy}/seed{base['seed']}"
    print(f"[{tag}] post hoc on {spec.upstream}: best test acc {history['best_test_acc']:.2f}"
          f" ({spec.upstream}: {base['best_test_acc']:.2f}, {history['best_test_acc'] - base['best_test_acc']:+.2f}),"
          f" final {history['final_test_acc']:.2f} ({spec.upstream}: {base['final_test_acc']:.2f},"
          f" {history['final_test_acc'] - base['final_test_acc']:+.2f})")


def main(argv: list[str] | None = None) -> None:
    parser = cli.run_parser(__doc__)
    args = parser.parse_args(argv)
    config = cli.read_config(args)
    base = cfg.RUN_DIR.format(benchmark=args.benchmark, strategy=cfg.strategy(config, args.strategy).upstream,
                              seed=args.seed)
    out = cfg.RUN_DIR.format(benchmark=args.benchmark, strategy=args.strategy, seed=args.seed)
    posthoc(config, args.strategy, f"{base}/history.json", f"{base}/predictions.npz", f"{out}/history.json",
            f"{out}/predictions.npz")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        posthoc(sm.config, sm.wildcards.strategy, sm.input.history, sm.input.predictions, sm.output.history,
                sm.output.predictions)
elif __name__ == "__main__":
    main()
