"""Regenerate the trends of a paper's figures from the analytic baselines.

Usage::

    python -m baselines.reproduce yang2019 [--drops N] [--seed S] [--out DIR] [--quick]
    python -m baselines.reproduce cai2019 [--out DIR] [--quick]     (see baselines.reproduce_cai2019)

Figure set ``yang2019`` (Yang et al. 2019, QKD then NOMA, K = 2, defaults of Section IV):

- **Fig. 4**: mean min secure rate (Mbit/s) vs the power budget P_max in {0, 5, ..., 40} dBm for
  Algorithm 1, EXH (Algorithm 1 from the default start plus 100 random starts, best kept) and the
  TDMA benchmark (stage 2 by TDMA). The paper shows NOMA above TDMA and EXH at or slightly above
  Algorithm 1.
- **Fig. 5**: mean min secure rate of Algorithm 1 vs the photon number m in {1, 2, 5, ..., 100},
  one curve per |alpha||beta| in {0.3, 0.4, 0.5}. The paper shows the rate falling with m (longer
  QKD) and with |alpha||beta| (larger error constant A = 4 |alpha|^2 |beta|^2).

Every curve point is the mean over the same seeded drops (a drop = user positions plus one fading
draw, from ``numpy.random.default_rng(seed)`` through the core sampling functions), so the curves
are paired and their differences are not blurred by drop-to-drop noise. EXH's random starts come
from a per-drop generator seeded by (seed, drop index), also shared by every P_max. Objective values
are the env's own metric (:func:`secure_env.core.qkd_noma.play_frame`), reported in Mbit/s with a
95 % normal-approximation confidence half-width (1.96 s / sqrt(n); NaN for a single drop).

Each figure writes ``<name>.csv`` (columns: swept parameter, curve, mean_mbps, ci95_mbps, drops)
and ``<name>.png`` under ``--out`` (default ``runs/reproduce/<figure set>``) and prints a table.
Another paper's figures are added as one more entry of :data:`FIGURE_SETS`.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from baselines.yang2019.algorithm1 import algorithm1
from baselines.yang2019.exh import exhaustive
from baselines.yang2019.tdma import tdma
from baselines.cli import OneLineParser
from secure_env.core import qkd_noma as model
from secure_env.scenarios import make_scenario

Array = NDArray[np.float64]

#: drops of a full run: ~80 s on a 2-core machine (EXH dominates: ~20 ms per drop and P_max value)
DEFAULT_DROPS = 400
#: drops of a ``--quick`` run (a few seconds; for tests)
QUICK_DROPS = 4
DEFAULT_SEED = 0
#: stream tag mixed into the seed of EXH's random starts (keeps them apart from the drop stream)
_EXH_STREAM = 4


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class FigureData:
    """One figure: per-drop samples (bit/s) of each curve at each value of the swept parameter."""

    name: str
    title: str
    param: str                       # CSV column name of the swept parameter
    x_label: str                     # axis label, with unit
    y_label: str
    x: list[float]
    curves: dict[str, list[Array]] = field(default_factory=dict)   # label -> one array per x
    log_x: bool = False
    #: paired differences printed as extra table columns: (column title, curve a, curve b) -> a - b
    paired: list[tuple[str, str, str]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """CSV rows: one per (x, curve), with mean and 95 % half-width in Mbit/s."""
        out = []
        for label, samples in self.curves.items():
            for x, v in zip(self.x, samples):
                mean, ci = mean_ci(v)
                out.append({self.param: _fmt_x(x), "curve": label, "mean_mbps": mean / 1e6,
                            "ci95_mbps": ci / 1e6, "drops": int(v.size)})
        return out


def mean_ci(samples: Array) -> tuple[float, float]:
    """Mean and 95 % normal-approximation confidence half-width (NaN for fewer than 2 samples)."""
    v = np.asarray(samples, dtype=np.float64)
    mean = float(v.mean())
    ci = 1.96 * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else math.nan
    return mean, ci


def _fmt_x(x: float) -> int | float:
    """Whole numbers as int (``30`` rather than ``30.0``) for the CSV and tables."""
    return int(x) if float(x).is_integer() else float(x)


# --------------------------------------------------------------------------------------------
# Drops
# --------------------------------------------------------------------------------------------
def draw_drops(scenario: Any, drops: int, seed: int) -> tuple[Array, Array]:
    """``drops`` seeded drops -> (gains, distances), each (drops, K). Positions first, then fading,
    both from one ``default_rng(seed)``; only ``area_m``, ``min_distance_m`` and ``num_users`` of
    the scenario matter, so sweeps over other parameters can share the drops."""
    _, distances, gains = model.sample_drops(np.random.default_rng(seed), scenario, (drops,))
    return gains, distances


# --------------------------------------------------------------------------------------------
# Yang et al. 2019
# --------------------------------------------------------------------------------------------
YANG_P_MAX_DBM: tuple[float, ...] = (0, 5, 10, 15, 20, 25, 30, 35, 40)
YANG_PHOTONS_M: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)
YANG_ALPHA_BETA: tuple[float, ...] = (0.3, 0.4, 0.5)
YANG_EXH_RESTARTS = 100


def yang2019_fig4(drops: int, seed: int) -> FigureData:
    """Fig. 4: min secure rate vs P_max for Algorithm 1, EXH and TDMA on shared drops."""
    base = make_scenario("yang2019")
    gains, dist = draw_drops(base, drops, seed)
    fig = FigureData(name="fig4", title="Yang et al. 2019, Fig. 4 (K=2, m=10, |alpha||beta|=0.5)",
                     param="p_max_dbm", x_label="maximal transmit power $P_{max}$ (dBm)",
                     y_label="mean min secure rate (Mbit/s)", x=list(YANG_P_MAX_DBM),
                     curves={"Algorithm 1": [], "EXH": [], "TDMA": []},
                     paired=[("EXH-Alg.1", "EXH", "Algorithm 1"),
                             ("Alg.1-TDMA", "Algorithm 1", "TDMA")])
    for p_dbm in YANG_P_MAX_DBM:
        s = make_scenario("yang2019", p_max_dbm=float(p_dbm))
        fig.curves["Algorithm 1"].append(algorithm1(s, gains, dist).objective_bps)
        fig.curves["EXH"].append(np.array([
            float(exhaustive(s, gains[i], dist[i],
                                 np.random.default_rng([seed, _EXH_STREAM, i]),
                                 restarts=YANG_EXH_RESTARTS).objective_bps)
            for i in range(drops)]))
        fig.curves["TDMA"].append(tdma(s, gains, dist).objective_bps)
    return fig


def yang2019_fig5(drops: int, seed: int) -> FigureData:
    """Fig. 5: Algorithm 1's min secure rate vs m, one curve per |alpha||beta|, on shared drops."""
    base = make_scenario("yang2019")
    gains, dist = draw_drops(base, drops, seed)
    fig = FigureData(name="fig5", title="Yang et al. 2019, Fig. 5 (K=2, P_max=30 dBm, Algorithm 1)",
                     param="photons_m", x_label="photon number m (per user)",
                     y_label="mean min secure rate (Mbit/s)", x=[float(m) for m in YANG_PHOTONS_M],
                     log_x=True, paired=[(f"ab{YANG_ALPHA_BETA[0]:g}-ab{YANG_ALPHA_BETA[-1]:g}",
                                          f"|alpha||beta|={YANG_ALPHA_BETA[0]:g}",
                                          f"|alpha||beta|={YANG_ALPHA_BETA[-1]:g}")])
    for ab in YANG_ALPHA_BETA:
        label = f"|alpha||beta|={ab:g}"
        fig.curves[label] = [
            algorithm1(make_scenario("yang2019", photons_m=m, alpha_beta=ab), gains,
                           dist).objective_bps
            for m in YANG_PHOTONS_M]
    return fig


def yang2019(drops: int, seed: int) -> list[FigureData]:
    """The ``yang2019`` figure set: Fig. 4 and Fig. 5."""
    return [yang2019_fig4(drops, seed), yang2019_fig5(drops, seed)]


#: figure-set name -> function (drops, seed) -> figures; add e.g. "cai2019" here
FIGURE_SETS: dict[str, Callable[[int, int], list[FigureData]]] = {"yang2019": yang2019}
#: figure sets with their own runner (deterministic geometry: no drops): name -> run(out, quick)
RUNNERS: dict[str, Callable[[Path, bool], Any]] = {}


def _cai2019(out: Path, quick: bool) -> Any:
    from baselines import reproduce_cai2019

    return reproduce_cai2019.run(out, quick)


RUNNERS["cai2019"] = _cai2019


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def write_csv(fig: FigureData, path: Path) -> None:
    """Write the figure's rows (see :meth:`FigureData.rows`)."""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fig.param, "curve", "mean_mbps", "ci95_mbps", "drops"])
        w.writeheader()
        for row in fig.rows():
            w.writerow({**row, "mean_mbps": f"{row['mean_mbps']:.6f}",
                        "ci95_mbps": f"{row['ci95_mbps']:.6f}"})


def _tex(text: str) -> str:
    """Plain-ASCII labels of the CSV -> matplotlib mathtext for the plots."""
    return text.replace("|alpha||beta|", r"$|\alpha||\beta|$").replace("P_max", r"$P_{max}$")


def write_png(fig: FigureData, path: Path) -> None:
    """Plot each curve's mean with a shaded 95 % band, on matplotlib's Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.2), dpi=120)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("d", "-."), ("v", "-")]
    for j, (label, samples) in enumerate(fig.curves.items()):
        stats = np.array([mean_ci(v) for v in samples]) / 1e6
        marker, line = styles[j % len(styles)]
        (h,) = ax.plot(fig.x, stats[:, 0], marker=marker, linestyle=line, fillstyle="none",
                       label=_tex(label))
        ci = np.nan_to_num(stats[:, 1])
        ax.fill_between(fig.x, stats[:, 0] - ci, stats[:, 0] + ci, color=h.get_color(), alpha=0.12,
                        linewidth=0)
    if fig.log_x:
        ax.set_xscale("log")
        ax.set_xticks(fig.x)
        ax.set_xticklabels([f"{_fmt_x(x)}" for x in fig.x])
    n = next(iter(fig.curves.values()))[0].size
    ax.set_title(f"{_tex(fig.title)}\nmean over {n} drops, bands: 95 % CI of the mean", fontsize=9)
    ax.set_xlabel(fig.x_label)
    ax.set_ylabel(fig.y_label)
    ax.grid(True, alpha=0.3)
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)


def format_table(fig: FigureData) -> str:
    """A compact text table: one row per swept value, one 'mean ± ci' column per curve (Mbit/s),
    then the paired differences of :attr:`FigureData.paired` (same drops, so a tighter CI)."""
    labels = list(fig.curves)

    def cell(v: Array) -> str:
        return "{:.4f} ± {:.4f}".format(*(np.array(mean_ci(v)) / 1e6))

    cells = [[f"{_fmt_x(x)}"] + [cell(fig.curves[lab][i]) for lab in labels]
             + [cell(fig.curves[a][i] - fig.curves[b][i]) for _, a, b in fig.paired]
             for i, x in enumerate(fig.x)]
    head = [fig.param] + labels + [title for title, _, _ in fig.paired]
    widths = [max(len(r[c]) for r in [head] + cells) for c in range(len(head))]
    lines = [f"{fig.name}: {fig.title} [Mbit/s, mean ± 95 % CI]",
             "  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (figure set is a positional choice of :data:`FIGURE_SETS`)."""
    p = OneLineParser(prog="python -m baselines.reproduce",
                description="Regenerate a paper's figure trends from the baselines.")
    p.add_argument("figures", metavar="FIGURE_SET",
                   help=f"figure set to regenerate; one of: {', '.join(sorted({**FIGURE_SETS, **RUNNERS}))}")
    p.add_argument("--drops", type=int, default=None,
                   help=f"drops per curve point (default {DEFAULT_DROPS}, "
                        f"{QUICK_DROPS} with --quick)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the drops (default 0)")
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
    drops = args.drops if args.drops is not None else (QUICK_DROPS if args.quick else DEFAULT_DROPS)
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
        write_csv(fig, out / f"{fig.name}.csv")
        write_png(fig, out / f"{fig.name}.png")
        print(format_table(fig))
        print()
    print(f"{args.figures}: {drops} drops, seed {args.seed}, computed in {elapsed:.1f} s; "
          f"wrote {', '.join(f'{f.name}.csv/.png' for f in figures)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
