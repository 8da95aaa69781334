"""Figures 4 and 5 of Yang et al. 2019 from the analytic baselines (``python -m agents.reproduce yang2019``).

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
95 % normal-approximation confidence half-width (1.96 s / sqrt(n); NaN for a single drop;
:func:`agents.evaluation.summarise` with ``normal=True``).

Each figure writes ``<name>.csv`` (columns: swept parameter, curve, mean_mbps, ci95_mbps, drops)
and ``<name>.png`` under ``--out`` (default ``runs/reproduce/<figure set>``) and prints a table.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.evaluation import summarise
from baselines.yang2019.algorithm1 import algorithm1
from baselines.yang2019.exh import exhaustive
from baselines.yang2019.tdma import tdma
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
                c = summarise(v, normal=True)
                out.append({self.param: _fmt_x(x), "curve": label, "mean_mbps": c["mean"] / 1e6,
                            "ci95_mbps": c["ci95"] / 1e6, "drops": int(v.size)})
        return out


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
        cis = [summarise(v, normal=True) for v in samples]
        stats = np.array([[c["mean"], c["ci95"]] for c in cis]) / 1e6
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
        c = summarise(v, normal=True)
        return "{:.4f} ± {:.4f}".format(*(np.array([c["mean"], c["ci95"]]) / 1e6))

    cells = [[f"{_fmt_x(x)}"] + [cell(fig.curves[lab][i]) for lab in labels]
             + [cell(fig.curves[a][i] - fig.curves[b][i]) for _, a, b in fig.paired]
             for i, x in enumerate(fig.x)]
    head = [fig.param] + labels + [title for title, _, _ in fig.paired]
    widths = [max(len(r[c]) for r in [head] + cells) for c in range(len(head))]
    lines = [f"{fig.name}: {fig.title} [Mbit/s, mean ± 95 % CI]",
             "  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
