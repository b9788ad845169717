"""Command-line arguments shared by the entry scripts that run one (benchmark, strategy, seed)."""

import argparse


def run_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with ``--config``, ``--benchmark``, ``--strategy`` and ``--seed``; ``doc`` is its help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--seed", type=int, required=True)
    return parser
