"""Materialize one long-tailed subset: its index JSON and uint8 cache.

As a plain command:
    python scripts/materialize.py --dataset cifar10 --ratio 100
(writes results/data/cifar10-lt100/{index.json,cache.npz}); as the Snakemake rule
``materialize`` it takes the same from the ``snakemake`` object.
"""

import argparse

from ltbench import config as cfg
from ltbench.data import materialize
from ltbench.logs import redirect_to_log


def materialize_from_config(config: dict, dataset: str, ratio: float, index_path: str, cache_path: str) -> None:
    """Materialize ``dataset`` at ``ratio`` with the config's data root, download flag and subset seed."""
    entry = cfg.dataset(config, dataset)
    data = config["data"]
    location = entry.get("path", data["root"])
    index = materialize(entry["format"], location, ratio, data["subset_seed"], index_path, cache_path, data["download"])
    print(f"{dataset} rho={ratio}: {index['num_train']} train images, counts {index['class_counts']},"
          f" {index['num_test']} test images")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--ratio", type=float, required=True)
    args = parser.parse_args(argv)
    config = cfg.load_config(args.config)
    out = cfg.DATA_DIR.format(data_id=f"{args.dataset}-lt{cfg.format_ratio(args.ratio)}")
    materialize_from_config(config, args.dataset, args.ratio, f"{out}/index.json", f"{out}/cache.npz")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        materialize_from_config(sm.config, sm.wildcards.dataset, float(sm.wildcards.ratio), sm.output.index,
                                sm.output.cache)
elif __name__ == "__main__":
    main()
