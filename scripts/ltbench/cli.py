"""Command-line arguments shared by the entry scripts that run one (benchmark, strategy, seed)."""

import argparse


def run_parser(doc: str, several_seeds: bool = False) -> argparse.ArgumentParser:
    """A parser with ``--config``, ``--benchmark``, ``--strategy`` and ``--seed`` (repeatable, a list,
    if ``several_seeds``); ``doc`` is its help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategy", required=True)
    if several_seeds:
        parser.add_argument("--seed", type=int, action="append", required=True,
                            help="repeat to train several seeds side by side")
    else:
        parser.add_argument("--seed", type=int, required=True)
    return parser
