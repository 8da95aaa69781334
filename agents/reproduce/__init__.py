"""Regenerate the trends of a paper's figures from the analytic baselines.

Usage::

    python -m agents.reproduce yang2019 [--drops N] [--seed S] [--out DIR] [--quick]
    python -m agents.reproduce cai2019 [--out DIR] [--quick]

- ``yang2019`` (:mod:`agents.reproduce.yang2019`): Figs. 4 and 5 of Yang et al. 2019, means over
  seeded drops with 95 % confidence bands;
- ``cai2019`` (:mod:`agents.reproduce.cai2019`): Figs. 2-4 of Cai et al. 2019 (deterministic
  geometry, one plan per point).

Figure reproduction runs the baselines, so it lives above ``baselines/`` (and shares the
confidence-interval helper, :func:`agents.evaluation.summarise`, with the scoreboards). Another
paper's figures are added as one more entry of :data:`FIGURE_SETS` (drop-averaged figures) or
:data:`RUNNERS` (a figure set with its own runner).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.cli import OneLineParser
from agents.reproduce import yang2019

#: figure-set name -> function (drops, seed) -> figures
FIGURE_SETS: dict[str, Callable[[int, int], list[yang2019.FigureData]]] = {"yang2019": yang2019.yang2019}
#: figure sets with their own runner (deterministic geometry: no drops): name -> run(out, quick)
RUNNERS: dict[str, Callable[[Path, bool], Any]] = {}


def _cai2019(out: Path, quick: bool) -> Any:
    from agents.reproduce import cai2019

    return cai2019.run(out, quick)


RUNNERS["cai2019"] = _cai2019


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (figure set is a positional choice of :data:`FIGURE_SETS`)."""
    p = OneLineParser(prog="python -m agents.reproduce",
                      description="Regenerate a paper's figure trends from the baselines.")
    p.add_argument("figures", metavar="FIGURE_SET",
                   help=f"figure set to regenerate; one of: {', '.join(sorted({**FIGURE_SETS, **RUNNERS}))}")
    p.add_argument("--drops", type=int, default=None,
                   help=f"drops per curve point (default {yang2019.DEFAULT_DROPS}, "
                        f"{yang2019.QUICK_DROPS} with --quick)")
    p.add_argument("--seed", type=int, default=yang2019.DEFAULT_SEED, help="seed of the drops (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/reproduce/<FIGURE_SET>)")
    p.add_argument("--quick", action="store_true", help="very few drops, for smoke tests")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad arguments, after argparse's one-line
    message on stderr) instead of raising ``SystemExit``, so tests can call it directly."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.figures not in FIGURE_SETS and args.figures not in RUNNERS:
            parser.error(f"unknown figure set {args.figures!r}; "
                         f"choose from {', '.join(sorted({**FIGURE_SETS, **RUNNERS}))}")
        if args.drops is not None and args.drops < 1:
            parser.error(f"--drops must be at least 1, got {args.drops}")
        if args.seed < 0:
            parser.error(f"--seed must be non-negative, got {args.seed}")
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    drops = args.drops if args.drops is not None else (yang2019.QUICK_DROPS if args.quick else yang2019.DEFAULT_DROPS)
    out = args.out if args.out is not None else Path("runs") / "reproduce" / args.figures
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    if args.figures in RUNNERS:
        RUNNERS[args.figures](out, args.quick)
        print(f"{args.figures}: computed in {time.perf_counter() - start:.1f} s; wrote fig2-fig4 "
              f"(.csv/.png) and summary.csv to {out}")
        return 0
    figures = FIGURE_SETS[args.figures](drops, args.seed)
    elapsed = time.perf_counter() - start
    for fig in figures:
        yang2019.write_csv(fig, out / f"{fig.name}.csv")
        yang2019.write_png(fig, out / f"{fig.name}.png")
        print(yang2019.format_table(fig))
        print()
    print(f"{args.figures}: {drops} drops, seed {args.seed}, computed in {elapsed:.1f} s; "
          f"wrote {', '.join(f'{f.name}.csv/.png' for f in figures)} to {out}")
    return 0
