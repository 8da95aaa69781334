"""Figures 2-4 of Cai et al. 2019 from the analytic baselines (``python -m agents.reproduce cai2019``).

The geometry is deterministic (spec §12 defaults: q0 = (0, 0), qF = (1000, 0), eavesdropper
estimate (500, 0), users (250, 150), (500, -150), (750, 150)), so every point is one plan, not a
mean over drops. Schemes: ``straight_line`` (constant speed, sub-problem 1 on that path),
``algorithm3`` (the paper's alternation) and ``joint`` (beyond the paper: trajectory and power
refined together from Algorithm 3). Every energy efficiency is the env's metric
(:func:`secure_env.core.uav_ofdma.trajectory_outcome`).

- **fig2**: energy efficiency (kbit/J) of Algorithm 3 vs outer iteration for r_E = 10 and 150 m
  (P_peak = 10 W), with the straight line as the iteration-0 level. Paper: convergence within a
  few iterations, large gain over the straight line.
- **fig3**: trajectories for r_E = 10 and 150 m (one colour per scheme, the eavesdropper disc
  to scale) and each scheme's transmit power per slot, with the straight line. Paper: for a small disc the UAV keeps away from it, for a large one it crosses
  quickly with low power.
- **fig4**: energy efficiency vs r_E in {0, 10, 25, 50, 75, 100, 150} m for P_peak = 1 and 10 W,
  every scheme. Paper: EE falls with the radius; the gain over the straight line is larger at the
  higher peak power.

Outputs under ``--out``: ``fig2.csv``/``.png``, ``fig3.csv``/``.png``, ``fig4.csv``/``.png`` and
``summary.csv`` (per radius and peak power: EE of each scheme, Algorithm 3's iterations, wall
times). ``--quick`` shrinks the mission (N = 10 slots, qF = (300, 0), eavesdropper at (150, 0),
users scaled) and the radius grid, for smoke tests.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baselines.cai2019 import power
from baselines.cai2019 import trajectory as tr
from secure_env.core import uav_ofdma as model
from secure_env.scenarios import make_scenario

RADII = (0.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0)
PEAKS = (1.0, 10.0)
QUICK = dict(num_slots=10, end_xy=(300.0, 0.0), eve_xy=(150.0, 0.0),
             user_xy=((75.0, 45.0), (150.0, -45.0), (225.0, 45.0)))
QUICK_RADII = (10.0, 40.0)


@dataclass
class Run:
    """All schemes for one (radius, peak power)."""

    radius: float
    peak: float
    straight: power.PowerPlan
    straight_path: tuple[np.ndarray, np.ndarray]
    a3: tr.Algorithm3Result
    joint: tr.JointResult
    wall_straight_s: float


def solve(radius: float, peak: float, quick: bool) -> Run:
    """Straight line, Algorithm 3 and joint for one setting."""
    s = make_scenario("cai2019", eve_radius_m=radius, peak_power_w=peak, **(QUICK if quick else {}))
    t0 = time.perf_counter()
    q, v = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    straight = power.subproblem1(s, q, v)
    wall = time.perf_counter() - t0
    a3 = tr.algorithm3(s)
    joint = tr.joint_refinement(s, a3)
    return Run(radius, peak, straight, (q, v), a3, joint, wall)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _figure(size: tuple[float, float] = (6.0, 4.2)) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _save_ee_plot(fig: Any, ax: Any, x_label: str, title: str, legend_size: int, path: Path) -> None:
    """Label an energy-efficiency plot (kbit/J on y) and write it."""
    ax.set_xlabel(x_label)
    ax.set_ylabel("energy efficiency (kbit/J)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path)


def fig2_figure(runs: dict[tuple[float, float], Run], radii: tuple[float, ...]) -> tuple[Any, list[dict[str, Any]]]:
    """Fig. 2 as a figure and its rows: Algorithm 3's energy efficiency per outer iteration for each
    radius (P_peak = 10 W), the straight line's level dashed in the same colour; the legend below
    the axes, off the curves (the straight lines span the whole width)."""
    rows = []
    fig = _figure((6.0, 4.8))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    for r in radii:
        run = runs[(r, 10.0)]
        for i, ee in enumerate(run.a3.history):
            rows.append({"radius_m": r, "iteration": i, "algorithm3_kbit_per_j": ee / 1e3,
                         "straight_line_kbit_per_j": run.straight.energy_efficiency / 1e3})
        (h,) = ax.plot(range(len(run.a3.history)), np.array(run.a3.history) / 1e3, "o-",
                       label=f"Algorithm 3, r_E = {r:g} m")
        ax.axhline(run.straight.energy_efficiency / 1e3, color=h.get_color(), ls="--",
                   label=f"straight line, r_E = {r:g} m")
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("energy efficiency (kbit/J)")
    ax.set_title("Fig. 2: convergence of Algorithm 3 (P_peak = 10 W)", fontsize=9)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(radii), fontsize=8)
    return fig, rows


def fig2(runs: dict[tuple[float, float], Run], radii: tuple[float, float], out: Path) -> list[dict[str, Any]]:
    fig, rows = fig2_figure(runs, radii)
    fig.savefig(out / "fig2.png")
    _write_csv(out / "fig2.csv", rows)
    return rows


#: Fig. 3's schemes: (name, colour, marker, hollow marker, line style of the power panel); distinct
#: styles keep coinciding power curves apart (the straight line's can equal Algorithm 3's)
FIG3_SCHEMES = (("straight_line", "tab:purple", "^", False, ":"), ("algorithm3", "tab:orange", "o", False, "-"),
                ("joint", "tab:green", "s", True, "--"))


def fig3_figure(runs: dict[tuple[float, float], Run], radii: tuple[float, ...], quick: bool = False
                ) -> tuple[Any, list[dict[str, Any]]]:
    """Fig. 3 as a figure and its rows: one row of panels per radius, the trajectories (one colour
    and marker per scheme, over the users and the eavesdropper estimate with its disc to scale) on
    the left, each scheme's transmit power per slot on the right; one legend outside the panels."""
    from matplotlib.patches import Circle

    rows: list[dict[str, Any]] = []
    fig = _figure((10.0, 3.2 * len(radii) + 1.0))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(radii), 2, width_ratios=[2.2, 1.0], squeeze=False)
    for j, r in enumerate(radii):
        run = runs[(r, 10.0)]
        ax, ax_p = axes[j]
        scen = make_scenario("cai2019", eve_radius_m=r, **(QUICK if quick else {}))
        ax.add_patch(Circle(scen.eve_xy, max(r, 1.0), facecolor=(0.84, 0.15, 0.16, 0.2), edgecolor="tab:red",
                            lw=1.5, zorder=5, label="eavesdropper disc (radius r_E, to scale)"))
        ax.plot(*scen.eve_xy, "+", color="tab:red", ms=6, mew=1.2, zorder=6, label="eavesdropper estimate")
        ux = np.asarray(scen.user_xy)
        ax.scatter(ux[:, 0], ux[:, 1], marker="s", s=50, color="k", zorder=6, label="users")
        ax.plot(*scen.start_xy, "o", color="k", mfc="white", ms=9, mew=2, zorder=7, label="start q_0")
        ax.plot(*scen.end_xy, "*", color="k", ms=14, zorder=7, label="destination q_F")
        paths = {"straight_line": (run.straight_path[0], run.straight.power_w.sum(axis=1)),
                 "algorithm3": (run.a3.positions, run.a3.plan.power_w.sum(axis=1)),
                 "joint": (run.joint.positions, run.joint.plan.power_w.sum(axis=1))}
        top = 0.0
        for name, colour, marker, hollow, style in FIG3_SCHEMES:
            q, power = paths[name]
            path = np.vstack([scen.start_xy, q])
            top = max(top, float(np.max(power)))
            dotted = style == ":"
            ax.plot(path[:, 0], path[:, 1], ls=style, color=colour, lw=2.0 if dotted else 1.3, marker=marker,
                    ms=5 if hollow else 3.5, mfc="none" if hollow else colour, zorder=4 if dotted else 3, label=name)
            ax_p.plot(np.arange(1, len(power) + 1), power, drawstyle="steps-mid", ls=style, color=colour,
                      lw=2.0 if dotted else 1.3, marker=marker, ms=4, mfc="none" if hollow else colour,
                      zorder=4 if dotted else 3)
            for n, (x, y) in enumerate(q):
                rows.append({"radius_m": r, "scheme": name, "slot": n + 1, "x_m": float(x), "y_m": float(y),
                             "transmit_power_w": float(power[n])})
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.05)
        ax.set_title(f"trajectories, r_E = {r:g} m", fontsize=9)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.grid(True, alpha=0.25)
        _power_limits(ax_p, top, scen.peak_power_w)
        ax_p.set_title(f"transmit power per slot, r_E = {r:g} m", fontsize=9)
        ax_p.set_xlabel("slot")
        ax_p.set_ylabel("transmit power (W)")
        ax_p.grid(True, alpha=0.25)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    fig.suptitle("Fig. 3: trajectories and transmit power (P_peak = 10 W, dashed where in range)", fontsize=10)
    return fig, rows


def _power_limits(ax: Any, top: float, peak: float) -> None:
    """y range of a power panel: up to the largest power with a margin; P_peak dashed when in range."""
    if 1.15 * top >= peak:
        ax.axhline(peak, color="0.3", ls="--", lw=1.0)
        ax.set_ylim(0.0, 1.1 * peak)
    else:
        ax.set_ylim(0.0, 1.15 * top if top > 0 else 1.0)


def fig3(runs: dict[tuple[float, float], Run], radii: tuple[float, float], out: Path,
         quick: bool = False) -> list[dict[str, Any]]:
    fig, rows = fig3_figure(runs, radii, quick)
    fig.savefig(out / "fig3.png")
    _write_csv(out / "fig3.csv", rows)
    return rows


def fig4(runs: dict[tuple[float, float], Run], radii: tuple[float, ...], out: Path) -> list[dict[str, Any]]:
    rows = []
    fig = _figure()
    ax = fig.add_subplot()
    styles = {"straight_line": ":", "algorithm3": "-", "joint": "--"}
    for peak in PEAKS:
        curves: dict[str, list[float]] = {k: [] for k in styles}
        for r in radii:
            run = runs[(r, peak)]
            vals = {"straight_line": run.straight.energy_efficiency, "algorithm3": run.a3.energy_efficiency,
                    "joint": run.joint.energy_efficiency}
            for k, v in vals.items():
                curves[k].append(v / 1e3)
            rows.append({"radius_m": r, "peak_power_w": peak,
                         **{f"{k}_kbit_per_j": v / 1e3 for k, v in vals.items()},
                         "algorithm3_gain": vals["algorithm3"] / vals["straight_line"] - 1.0,
                         "joint_gain_over_algorithm3": vals["joint"] / vals["algorithm3"] - 1.0,
                         "algorithm3_iterations": len(run.a3.history) - 1,
                         "algorithm3_wall_s": run.a3.wall_s, "joint_wall_s": run.joint.wall_s,
                         "straight_line_wall_s": run.wall_straight_s})
        for k, ls in styles.items():
            ax.plot(radii, curves[k], ls, marker="o" if peak == 10.0 else "s", fillstyle="none",
                    label=f"{k}, P_peak = {peak:g} W")
    _save_ee_plot(fig, ax, "eavesdropper uncertainty radius r_E (m)",
                  "Fig. 4: energy efficiency vs uncertainty radius", 6, out / "fig4.png")
    _write_csv(out / "fig4.csv", rows)
    return rows


def run(out: Path, quick: bool = False) -> list[dict[str, Any]]:
    """Compute every setting once, write the three figures; returns Fig. 4's rows (the summary)."""
    radii = QUICK_RADII if quick else RADII
    pair = (radii[0], radii[-1]) if quick else (10.0, 150.0)
    runs = {(r, p): solve(r, p, quick) for p in PEAKS for r in radii}
    out.mkdir(parents=True, exist_ok=True)
    fig2(runs, pair, out)
    fig3(runs, pair, out, quick)
    rows = fig4(runs, radii, out)
    _write_csv(out / "summary.csv", rows)
    print(f"{'r_E':>5} {'P_peak':>6} {'straight':>9} {'alg3':>9} {'joint':>9} {'alg3/sl':>8} {'joint/a3':>9} "
          f"{'iters':>5} {'t_a3 s':>7} {'t_joint s':>9}   [kbit/J]")
    for r in rows:
        print(f"{r['radius_m']:>5g} {r['peak_power_w']:>6g} {r['straight_line_kbit_per_j']:>9.4f} "
              f"{r['algorithm3_kbit_per_j']:>9.4f} {r['joint_kbit_per_j']:>9.4f} "
              f"{1 + r['algorithm3_gain']:>8.3f} {1 + r['joint_gain_over_algorithm3']:>9.4f} "
              f"{r['algorithm3_iterations']:>5d} {r['algorithm3_wall_s']:>7.2f} {r['joint_wall_s']:>9.2f}")
    return rows
