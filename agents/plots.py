"""Every figure of a run or a sweep; matplotlib is imported only when a figure is drawn.

- Learning curves (``learning_curve.png``): :func:`learning_curve` reads the run's episode log
  (``monitor/episodes.csv``, :mod:`agents.runs`), :func:`learning_curve_figure` /
  :func:`plot_learning_curve` draw it with a running mean (:func:`running_mean`), robust y limits
  (:func:`robust_limits`) and the scoreboard's held-out means as reference lines.
- Trajectories (``trajectories.png``): :func:`trajectory_figure` / :func:`plot_trajectories` fly
  every policy on one held-out episode (through :func:`agents.evaluation.evaluate`) and draw the
  UAV paths and transmit power.
- Sweeps (``sweep_<param>.png``): :func:`param_figure` / :func:`plot_param`, a metric against one
  swept parameter with 95 % CI error bars across seeds (:mod:`agents.sweep` runs the sweep).

Numbers come from :mod:`agents.evaluation` (scores, :func:`agents.evaluation.unit` and
:func:`agents.evaluation.metric_label` for axes); this module only draws. The benchmark's report
figures stay in :mod:`agents.benchmark.report`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from agents.runs import EPISODE_LOG

#: what the undiscounted episode return is, per env id (learning-curve axis label)
RETURN_LABELS = {
    "secure_env/UavSecureOfdma-v0": "episode return\n= EE (kbit/J) minus penalties",
    "secure_env/QuantumUav-v0": "episode return\n= secure EE (kbit/J) minus penalties",
    "secure_env/QkdNoma-v0": "episode return = sum over frames\nof min secure rate / B (bit/s/Hz)",
}


# -- learning curves -------------------------------------------------------------------------------
class LearningCurve(NamedTuple):
    """Training episodes in step order: the global timestep at each episode's end, its return and
    its primary metric (``metric``, NaN where the env did not report it)."""

    timesteps: np.ndarray
    returns: np.ndarray
    metric_values: np.ndarray
    metric: str


def learning_curve(out: Path) -> LearningCurve:
    """The run's training episodes from ``monitor/episodes.csv``, sorted by timestep (stable)."""
    path = Path(out) / "monitor" / EPISODE_LOG
    rows: list[tuple[float, float, float]] = []
    metric = "metric"
    if path.exists():
        lines = path.read_text().splitlines()
        if lines:
            metric = lines[0].split(",")[-1]
        for line in lines[1:]:
            parts = line.split(",")
            try:
                rows.append((float(parts[0]), float(parts[2]), float(parts[4])))
            except (IndexError, ValueError):
                continue
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    return LearningCurve(arr[:, 0], arr[:, 1], arr[:, 2], metric)


def robust_limits(values: np.ndarray, levels: list[float]) -> tuple[float, float] | None:
    """y limits that show every level (baseline lines), the best episode and the bulk of the
    others, with a 5 % margin. The bottom is the lowest episode unless that lies below both the
    5th percentile and Q1 - 3 IQR (then the lower of those two): a few disastrous early episodes do
    not squash the rest, while a steady climb stays in view."""
    finite = values[np.isfinite(values)]
    pts = [float(v) for v in levels if math.isfinite(v)]
    if finite.size:
        q1, q3 = np.percentile(finite, [25.0, 75.0])
        floor = min(float(np.percentile(finite, 5.0)), float(q1 - 3.0 * (q3 - q1)))
        pts += [max(float(finite.min()), floor), float(finite.max())]
    if not pts:
        return None
    lo, hi = min(pts), max(pts)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-9)
    return lo - pad, hi + pad


def running_mean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(each distinct timestep, mean of the last ``w`` episodes ended by then, ``w``): ``w`` is a
    50th of the episodes, and at least the most episodes that end at one timestep (parallel envs
    finish together), so the curve has one value per timestep and no vertical zigzag."""
    if not len(y):
        return x, y, 1
    steps, counts = np.unique(x, return_counts=True)
    w = max(1, len(y) // 50, int(counts.max()))
    csum = np.concatenate([[0.0], np.cumsum(y)])
    last = np.searchsorted(x, steps, side="right")         # episodes ended by each timestep
    first = np.maximum(last - w, 0)
    return steps, (csum[last] - csum[first]) / (last - first), w


_LEVEL_STYLES = [("tab:orange", "--"), ("tab:green", "-."), ("tab:red", ":"), ("tab:purple", "--"),
                 ("tab:brown", "-."), ("tab:gray", ":")]


def _curve_panel(ax: Any, x: np.ndarray, y: np.ndarray, levels: dict[str, float], styles: dict[str, tuple[str, str]],
                 ylabel: str) -> None:
    """Points, running mean and horizontal reference levels (``styles``: colour and line style per
    level name) on ``ax``, with robust y limits."""
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y):
        ax.plot(x, y, ".", alpha=0.25, color="tab:blue", label="training episode")
        sx, sy, w = running_mean(x, y)
        ax.plot(sx, sy, "-", color="tab:blue", label=f"running mean (last {w} episodes)")
    for name, level in levels.items():
        colour, style = styles[name]
        ax.axhline(level, ls=style, lw=1.4, color=colour, label=name)
    lim = robust_limits(y, list(levels.values()))
    if lim is not None:
        ax.set_ylim(*lim)
        below = int(np.sum(y < lim[0]))
        if below:
            ax.text(0.01, 0.02, f"{below} episode(s) below the axis", transform=ax.transAxes, fontsize=7,
                    color="0.3", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(True, alpha=0.3)


def plot_learning_curve(out: Path, title: str, board: Mapping[str, Any] | None = None,
                        env_id: str | None = None) -> Path:
    """Write ``<out>/learning_curve.png`` (:func:`learning_curve_figure`) atomically."""
    fig = learning_curve_figure(out, title, board, env_id)
    path = Path(out) / "learning_curve.png"
    fig.savefig(path.with_name("learning_curve.tmp.png"))
    os.replace(path.with_name("learning_curve.tmp.png"), path)
    return path


def learning_curve_figure(out: Path, title: str, board: Mapping[str, Any] | None = None,
                          env_id: str | None = None) -> Any:
    """The learning-curve figure of the run in ``out``, from its episode log, in step order.

    Top: the training episodes' return (what it is, per env, in the axis label), with each
    scored policy's mean held-out return as a dashed line when ``board`` (a scoreboard) is given.
    Bottom (when the env reports its primary metric per episode): that metric in the scoreboard's
    unit, with each policy's scoreboard mean. Held-out means come from the deterministic policy on
    held-out seeds; training episodes from the exploring policy on training seeds.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from agents.evaluation import metric_label, unit

    curve = learning_curve(out)
    env_id = env_id or (board or {}).get("env_id")
    metric = (board or {}).get("metric", curve.metric)
    has_metric = bool(np.isfinite(curve.metric_values).any()) and metric == curve.metric
    fig = Figure(figsize=(9.5, 7 if has_metric else 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if has_metric else 1, 1, sharex=True, squeeze=False)[:, 0]
    policies = (board or {}).get("policies", {})
    names = {name: f"{name} ({row.get('kind', 'policy')}, held-out mean)" for name, row in policies.items()}
    styles = {label: _LEVEL_STYLES[i % len(_LEVEL_STYLES)] for i, label in enumerate(names.values())}

    def levels(key: str, scale: float) -> dict[str, float]:
        found = {names[n]: row.get("metrics", {}).get(key, {}).get("mean") for n, row in policies.items()}
        return {label: m / scale for label, m in found.items() if m is not None and math.isfinite(m)}

    _curve_panel(axes[0], curve.timesteps, curve.returns, levels("return", 1.0), styles,
                 RETURN_LABELS.get(env_id or "", "episode return (sum of rewards)"))
    if has_metric:
        scale, _ = unit(metric)
        _curve_panel(axes[1], curve.timesteps, curve.metric_values / scale, levels(metric, scale), styles,
                     f"{metric_label(metric)}\nper training episode")
    if not len(curve.timesteps):
        axes[0].text(0.5, 0.5, "no finished training episode", ha="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("timesteps (global step at each episode's end)")
    axes[0].set_title(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # a level only the lower panel has (never the case today) still gets its entry
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.70, 0.93), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.70, 1))
    return fig


# -- trajectories ----------------------------------------------------------------------------------
#: policy colours of the trajectory plot (tab10 order), and markers for print in grey
TRAJECTORY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                      "tab:olive", "tab:cyan", "tab:gray", "tab:red")
TRAJECTORY_MARKERS = "o^sDv<>pP*"
#: line styles of the power panel (coinciding power curves stay apart)
TRAJECTORY_STYLES = ("-", "--", "-.", ":")


def trajectory_figure(policies: Mapping[str, Any], env_id: str, seed: int, **env_kwargs: Any) -> Any | None:
    """The figure of :func:`plot_trajectories` (a matplotlib ``Figure``), or None for an env
    without a UAV position. Left: each policy's path (one colour and marker per policy) from the
    start q_0 to its last position, over the users, the eavesdropper estimate and its disc (to
    scale); right: each policy's transmit power per slot against P_peak. One legend, outside both
    panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from agents.evaluation import evaluate, make_env

    env = make_env(env_id, **env_kwargs)
    try:
        env.reset(seed=int(seed))
        scenario = getattr(env.unwrapped, "scenario", None)
        geometry = getattr(env.unwrapped, "geometry", None)
        if scenario is None or geometry is None:
            return None
        geo = geometry()
    finally:
        env.close()
    fig = Figure(figsize=(11.0, 5.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax_p = fig.subplots(1, 2, width_ratios=[1.7, 1.0])
    discs = np.asarray(geo.get("eve_discs", [(*geo["eve_xy"], scenario.eve_radius_m)]), dtype=np.float64)
    for j, (ex, ey, radius) in enumerate(discs):
        label = (f"eavesdropper disc (r_E = {radius:g} m, to scale)" if len(discs) == 1
                 else "eavesdropper discs (to scale)") if j == 0 else None
        ax.add_patch(Circle((ex, ey), max(float(radius), 1.0), facecolor=(0.84, 0.15, 0.16, 0.2),
                            edgecolor="tab:red", lw=1.5, zorder=5, label=label))
    ax.plot(discs[:, 0], discs[:, 1], "+", color="tab:red", ms=6, mew=1.2, ls="none", zorder=6,
            label="eavesdropper estimate" + ("s" if len(discs) > 1 else ""))
    ax.scatter(geo["user_xy"][:, 0], geo["user_xy"][:, 1], marker="s", s=60, color="k", zorder=6, label="users")
    ax.plot(*geo["start_xy"], "o", color="k", mfc="white", ms=10, mew=2, zorder=7, label="start q_0")
    ax.plot(*geo["end_xy"], "*", color="k", ms=15, zorder=7, label="destination q_F")
    top = 0.0
    for i, (name, policy) in enumerate(policies.items()):
        colour = TRAJECTORY_COLOURS[i % len(TRAJECTORY_COLOURS)]
        marker = TRAJECTORY_MARKERS[i % len(TRAJECTORY_MARKERS)]
        rec = evaluate(policy, env_id, [seed], trace=("position_m", "transmit_power_w"), **env_kwargs)[0]
        path = np.vstack([geo["start_xy"], np.asarray(rec["trace"]["position_m"], dtype=np.float64)])
        power = np.asarray(rec["trace"]["transmit_power_w"], dtype=np.float64)
        style = TRAJECTORY_STYLES[i % len(TRAJECTORY_STYLES)]
        width = 2.0 if style == ":" else 1.4
        top = max(top, float(np.max(power))) if len(power) else top
        ax.plot(path[:, 0], path[:, 1], ls=style, color=colour, lw=width, marker=marker, ms=4, mfc="none",
                alpha=0.9, zorder=3 + 0.01 * i, label=name)
        ax.plot(*path[-1], marker=marker, color=colour, ms=9, zorder=5)     # where it ended
        ax_p.plot(np.arange(1, len(power) + 1), power, drawstyle="steps-mid", ls=style, color=colour,
                  lw=width, marker=marker, ms=3, mfc="none", alpha=0.9, zorder=3 + 0.01 * i)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.06)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("UAV trajectories (large marker: last position)", fontsize=10)
    ax.grid(True, alpha=0.25)
    peak = float(scenario.peak_power_w)
    if 1.15 * top >= peak:
        ax_p.axhline(peak, color="0.3", ls="--", lw=1.0)
        ax_p.set_ylim(0.0, 1.1 * peak)
    else:
        ax_p.set_ylim(0.0, 1.15 * top if top > 0 else 1.0)
    ax_p.set_xlabel("slot")
    ax_p.set_ylabel("transmit power (W)")
    ax_p.set_title(f"transmit power per slot (P_peak = {peak:g} W, dashed)", fontsize=10)
    ax_p.grid(True, alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8)
    fig.suptitle(f"{env_id}, held-out seed {seed}", fontsize=11)
    return fig


def plot_trajectories(policies: Mapping[str, Any], env_id: str, seed: int, out_dir: str | Path,
                      **env_kwargs: Any) -> Path | None:
    """``trajectories.png`` (:func:`trajectory_figure`): each policy's UAV path on one held-out
    episode and its transmit power per slot. None for envs without a UAV position."""
    fig = trajectory_figure(policies, env_id, seed, **env_kwargs)
    if fig is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path_png = out / "trajectories.png"
    tmp = out / "trajectories.tmp.png"
    fig.savefig(tmp)
    tmp.replace(path_png)
    return path_png


# -- sweeps ----------------------------------------------------------------------------------------
def plot_param(summary: dict[str, Any], key: str, path: Path) -> list[Path]:
    """Write :func:`param_figure` for one swept parameter: ``path`` itself, or one
    ``<stem>_<metric>.png`` per primary metric when the sweep holds several. Returns the paths."""
    from agents.sweep import _metrics

    metrics = _metrics(summary)
    written = []
    for metric in metrics:
        fig = param_figure(summary, key, metric)
        target = path if len(metrics) == 1 else path.with_name(f"{path.stem}_{metric}.png")
        tmp = target.with_name(target.stem + ".tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, target)
        written.append(target)
    return written


def param_label(env_ids: Sequence[str], key: str) -> str:
    """A swept env keyword in words with its unit (``eavesdropper radius (m)``), from the scenario
    field's metadata of the first env id that has the field (:func:`secure_env.scenarios.validation.field_label`)."""
    from agents.evaluation import make_env
    from secure_env.scenarios.validation import field_label

    for env_id in env_ids:
        env = make_env(env_id)
        try:
            label = field_label(env.unwrapped.scenario, key)
        finally:
            env.close()
        if label != key:
            return label
    return key


def param_figure(summary: dict[str, Any], key: str, metric: str) -> Any:
    """``metric`` vs one swept parameter, one line per (algo, policy), in the metric's display unit
    (:func:`agents.evaluation.unit`), with 95 % Student-t CI error bars across seeds (each seed's
    value averaged over the other swept parameters first)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from agents.evaluation import metric_label, summarise, unit

    scale, _ = unit(metric)
    envs = sorted({r["env_id"].split("/")[-1] for r in summary["groups"] if r["metric"] == metric})
    # tag -> x -> seed -> the seed's values over the other swept parameters
    series: dict[str, dict[Any, dict[Any, list[float]]]] = {}
    for r in summary["groups"]:
        if r["metric"] != metric:
            continue
        for name, s in r["policies"].items():
            tag = name if s["kind"] == "baseline" else f"{name} (agent)"
            if len(envs) > 1:
                tag = f"{r['env_id'].split('/')[-1]}: {tag}"
            by_seed = series.setdefault(tag, {}).setdefault(r["params"][key], {})
            for seed, value in zip(r["seeds"], s.get("values", [s["mean"]])):
                by_seed.setdefault(seed, []).append(value)
    fig = Figure(figsize=(8.5, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = "osD^v<>p"
    all_x: set[Any] = set()
    for i, (tag, by_x) in enumerate(sorted(series.items())):
        xs = sorted(by_x, key=lambda v: (isinstance(v, str), v))
        all_x.update(xs)
        # each seed's mean over the other parameters, then mean and CI across seeds
        stats = [summarise([float(np.mean(v)) / scale for v in by_x[x].values()]) for x in xs]
        ys = [st["mean"] for st in stats]
        err = [st["ci95"] if math.isfinite(st["ci95"]) else 0.0 for st in stats]
        ax.errorbar([str(x) if isinstance(x, str) else x for x in xs], ys, yerr=err, fmt="-",
                    marker=markers[i % len(markers)], capsize=3, label=tag, alpha=0.85)
    if all_x and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in all_x) and len(all_x) <= 12:
        ax.set_xticks(sorted(all_x))
    others = [k for k in summary["grid"] if k != key]
    averaged = f"each seed averaged over {', '.join(others)}; " if others else ""
    words = metric_label(metric)
    xlabel = param_label(sorted({r["env_id"] for r in summary["groups"] if r["metric"] == metric}), key)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(words)
    ax.set_title(f"{', '.join(envs)}: {words} vs {xlabel}\n"
                 f"mean and 95 % CI across seeds ({averaged}error bars: Student t)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the data
    fig.tight_layout()
    return fig
