"""Materialize one training subset (long-tailed, or the data as it is): its index JSON and uint8 cache.

As a plain command:
    python scripts/materialize.py --dataset cifar10 --ratio 100
    python scripts/materialize.py --dataset mine --ratio natural
(writes results/data/cifar10-lt100/{index.json,cache.npz}, results/data/mine-ltnatural/...);
as the Snakemake rule ``materialize`` it takes the same from the ``snakemake`` object.
"""

import argparse

from ltbench import cli
from ltbench import config as cfg
from ltbench.datasets.data import materialize
from ltbench.datasets.images import IMAGE_SIZE
from ltbench.logs import redirect_to_log


def materialize_from_config(
    config: dict, dataset: str, ratio: float | str, index_path: str, cache_path: str
) -> None:
    """Materialize ``dataset`` at ``ratio`` (a number or ``natural``) with the dataset entry's settings and the
    config's data root, download flag, subset seed and cache limit."""
    entry = cfg.dataset(config, dataset)
    data = config["data"]
    index = materialize(
        entry["format"], entry.get("path", data["root"]), ratio, data["subset_seed"], index_path, cache_path,
        data["download"], image_size=entry.get("image_size", IMAGE_SIZE), test_fraction=entry.get("test_fraction"),
        test_per_class=entry.get("test_per_class"), cache_limit_gb=data.get("cache_limit_gb"),
        validation_per_class=entry.get("validation_per_class", 0),
        validation_from_subset=entry.get("validation_from_subset", False),
    )
    print(f"{dataset} rho={ratio} (actual {index['actual_imbalance_ratio']:g}), {index['image_size']}px:"
          f" {index['num_train']} train images, counts {index['class_counts']}, {index['num_test']} test images")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_config(parser)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--ratio", type=cfg.parse_ratio, required=True, help="a number, or natural")
    args = parser.parse_args(argv)
    config = cli.read_config(args)
    out = cfg.DATA_DIR.format(data_id=cfg.data_id(args.dataset, args.ratio))
    materialize_from_config(config, args.dataset, args.ratio, f"{out}/index.json", f"{out}/cache.npz")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        materialize_from_config(sm.config, sm.wildcards.dataset, cfg.parse_ratio(sm.wildcards.ratio),
                                sm.output.index, sm.output.cache)
elif __name__ == "__main__":
    main()
