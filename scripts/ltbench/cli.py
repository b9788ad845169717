"""Reading config files as Snakemake does, and the command-line arguments shared by the entry scripts
that run one (benchmark, strategy, seed)."""

import argparse
from pathlib import Path
from typing import Any

import yaml

from ltbench import config as cfg
from ltbench import grids


def load_config(*paths: str | Path) -> dict[str, Any]:
    """Read YAML config files, each merged into the ones before it as ``snakemake --configfile`` merges
    into config.yaml (``ltbench.config.merge``), check that their numbers are finite (the schema is checked
    by the Snakefile's ``validate``) and expand their grids (``ltbench.grids``), as the Snakefile does."""
    config: dict[str, Any] = {}
    for path in paths:
        with open(path) as fh:
            loaded = yaml.safe_load(fh) or {}
        cfg.check_finite(loaded, str(path))
        cfg.merge(config, loaded)
    return grids.expand(config)


CONFIG_HELP = ("config file (default config.yaml); repeat to merge several in order, key by key as"
               " snakemake --configfile merges. The files given replace the default: --config config.yaml"
               " --config mine.yaml reads what snakemake --configfile mine.yaml reads")


def add_config(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:
    """``--config FILE``, repeatable: files merged in order (``load_config``), in place of
    config.yaml, which is read when none is given."""
    parser.add_argument("--config", action="append", metavar="FILE", help=help)


def config_files(args: argparse.Namespace) -> list[str]:
    """The ``--config`` files given, or config.yaml."""
    return args.config or ["config.yaml"]


def read_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config of ``config_files``, merged in order (``load_config``)."""
    return load_config(*config_files(args))


def run_parser(doc: str, several: bool = False) -> argparse.ArgumentParser:
    """A parser with ``--config`` (``add_config``), ``--benchmark``, ``--strategy`` and ``--seed`` (each of the
    last two repeatable, a list, if ``several``); ``doc`` is its help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config(parser)
    parser.add_argument("--benchmark", required=True)
    if several:
        parser.add_argument("--strategy", action="append", required=True,
                            help="repeat to train several strategies side by side (every strategy with every seed)")
        parser.add_argument("--seed", type=int, action="append", required=True,
                            help="repeat to train several seeds side by side")
    else:
        parser.add_argument("--strategy", required=True)
        parser.add_argument("--seed", type=int, required=True)
    return parser
