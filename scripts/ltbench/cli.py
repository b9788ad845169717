"""Command-line arguments shared by the entry scripts that run one (benchmark, strategy, seed)."""

import argparse


def add_config(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, repeatable: files merged in order, as ``snakemake --configfile`` merges into
    config.yaml (``ltbench.config.load_config``); config.yaml if none is given."""
    parser.add_argument("--config", action="append", metavar="FILE",
                        help="config file (default config.yaml); repeat to merge several in order,"
                             " e.g. --config config.yaml --config mine.yaml")


def config_files(args: argparse.Namespace) -> list[str]:
    """The ``--config`` files given, or config.yaml."""
    return args.config or ["config.yaml"]


def run_parser(doc: str, several_seeds: bool = False) -> argparse.ArgumentParser:
    """A parser with ``--config`` (``add_config``), ``--benchmark``, ``--strategy`` and ``--seed`` (repeatable, a list,
    if ``several_seeds``); ``doc`` is its help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config(parser)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategy", required=True)
    if several_seeds:
        parser.add_argument("--seed", type=int, action="append", required=True,
                            help="repeat to train several seeds side by side")
    else:
        parser.add_argument("--seed", type=int, required=True)
    return parser
