"""The harness's command line, shared by ``python -m bench`` and each scenario run alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from .core import SCENARIOS

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="``python -m bench``: run the benchmark scenarios, print a table, write JSON.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAMES",
        help=f"run only these scenarios (comma-separated, repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller data, shorter runs")
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS / "latest.json",
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed of the generated data")
    parser.add_argument(
        "--profile", action="store_true", help="also write cProfile output to bench/results/"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (databases, Daphne logs)"
    )
    parser.add_argument("--silent", action="store_true", help="print only the table")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for chunk in args.only for n in chunk.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = [n for n in SCENARIOS if not names or n in names]
    args.results_dir = args.json.parent
    return args
