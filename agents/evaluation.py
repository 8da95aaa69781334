"""One metric code path: run any policy on an env id over seeds, and rank policies on a scoreboard.

Every number comes from the env's ``info`` (per-step and the ``episode_metrics`` of the last step),
which the core produced. Policies (trained SB3 models or baselines) only choose actions.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import gymnasium as gym
import numpy as np
from scipy import stats

import secure_env  # noqa: F401  (registers the env ids)

#: evaluation seeds start here, far from the training seeds a run uses
HELD_OUT_SEED = 1_000_000


def held_out_seeds(n: int, offset: int = HELD_OUT_SEED) -> list[int]:
    """The ``n`` evaluation seeds every policy of a scoreboard is run on."""
    return [offset + i for i in range(n)]


def make_env(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` with a one-line ``ValueError`` for an unknown id."""
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("secure_env/"))
        raise ValueError(f"unknown env id {env_id!r}; registered: {known}")
    return gym.make(env_id, **env_kwargs)


def _bind(policy: Any, env: gym.Env) -> Any:
    """Baselines are built from an env: accept a class, a factory or a bound planner."""
    if isinstance(policy, type):
        return policy(env)
    if hasattr(policy, "bind"):
        policy.bind(env)
    return policy


def evaluate(policy: Any, env_id: str, seeds: Iterable[int], trace: Iterable[str] = (),
             **env_kwargs: Any) -> list[dict[str, Any]]:
    """Run ``policy`` for one episode per seed and return per-episode metrics from ``info``.

    ``policy`` is anything with SB3's ``predict(obs, state, episode_start, deterministic)``, or a
    baseline class (built as ``cls(env)``). A baseline's ``env_overrides`` are merged into the env
    keywords. Each record has ``seed``, ``return``, ``steps``, ``cost`` (sum of ``info["cost"]``) and
    every key of the last step's ``info["episode_metrics"]``; with ``trace`` keys it also has
    ``trace``: each key's per-step ``info`` values (for plots).
    """
    trace = tuple(trace)
    overrides = dict(getattr(policy, "env_overrides", {}) or {})
    env = make_env(env_id, **{**env_kwargs, **overrides})
    try:
        policy = _bind(policy, env)
        records = []
        for seed in seeds:
            obs, info = env.reset(seed=int(seed))
            state: Any = None
            start = True
            ret, cost, steps = 0.0, 0.0, 0
            traced: dict[str, list[Any]] = {key: [] for key in trace}
            while True:
                action, state = policy.predict(obs, state=state, episode_start=np.array([start]),
                                               deterministic=True)
                start = False
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                cost += float(info.get("cost", 0.0))
                for key in trace:
                    traced[key].append(info.get(key))
                steps += 1
                if terminated or truncated:
                    break
            rec: dict[str, Any] = {"seed": int(seed), "return": ret, "steps": steps, "cost": cost}
            rec.update({k: float(v) for k, v in info.get("episode_metrics", {}).items()})
            if trace:
                rec["trace"] = traced
            records.append(rec)
        return records
    finally:
        env.close()


def primary_metric(env_id: str) -> str:
    """The env's headline metric (a key of ``episode_metrics``), falling back to the return."""
    env_cls = gym.registry[env_id].entry_point
    if isinstance(env_cls, str):
        module, name = env_cls.split(":")
        env_cls = getattr(__import__(module, fromlist=[name]), name)
    return getattr(env_cls, "primary_metric", "return")


def summarise(values: Iterable[float]) -> dict[str, float]:
    """Mean and 95 % confidence half-width (Student t) of a sample."""
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    else:
        half = math.nan
    return {"mean": mean, "ci95": half, "n": n}


def scoreboard(policies: Mapping[str, Any], env_id: str, seeds: Iterable[int],
               baseline_names: Iterable[str] = (), **env_kwargs: Any) -> dict[str, Any]:
    """Evaluate every policy on the same seeds; rank by the env's primary metric.

    ``policies`` maps a name to a policy (or baseline class); names in ``baseline_names`` are the
    baselines the ratio column refers to (ratio = policy mean / best baseline mean).
    """
    seeds = list(seeds)
    metric = primary_metric(env_id)
    baseline_names = set(baseline_names)
    rows: dict[str, Any] = {}
    for name, policy in policies.items():
        recs = evaluate(policy, env_id, seeds, **env_kwargs)
        keys = [k for k in recs[0] if k != "seed"]
        rows[name] = {
            "kind": "baseline" if name in baseline_names else "agent",
            "metrics": {k: summarise(r[k] for r in recs) for k in keys},
            "episodes": recs,
        }
    base_means = [r["metrics"][metric]["mean"] for n, r in rows.items() if n in baseline_names]
    best = max(base_means) if base_means else math.nan
    for row in rows.values():
        m = row["metrics"][metric]["mean"]
        row["ratio_to_best_baseline"] = m / best if best and math.isfinite(best) and best != 0 else math.nan
    ranking = sorted(rows, key=lambda n: rows[n]["metrics"][metric]["mean"], reverse=True)
    return {"env_id": env_id, "env_kwargs": dict(env_kwargs), "seeds": seeds, "metric": metric,
            "ranking": ranking, "policies": rows}


def format_scoreboard(board: Mapping[str, Any]) -> str:
    """A Markdown table of a scoreboard (best first)."""
    metric = board["metric"]
    scale, unit = _unit(metric)
    lines = [f"Scoreboard: {board['env_id']}  ({len(board['seeds'])} held-out episodes, "
             f"metric {metric}{unit})", "",
             f"| rank | policy | kind | mean{unit} | 95% CI{unit} | ratio to best baseline | mean cost |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for i, name in enumerate(board["ranking"], 1):
        row = board["policies"][name]
        s = row["metrics"][metric]
        cost = row["metrics"].get("cost", {"mean": math.nan})["mean"]
        lines.append(f"| {i} | {name} | {row['kind']} | {s['mean'] / scale:.4f} | "
                     f"±{s['ci95'] / scale:.4f} | {row['ratio_to_best_baseline']:.4f} | {cost:.3g} |")
    return "\n".join(lines)


def _unit(metric: str) -> tuple[float, str]:
    if metric.endswith("_bps"):
        return 1e6, " (Mbit/s)"
    if metric.endswith("_bits_per_joule"):
        return 1e3, " (kbit/J)"
    return 1.0, ""


def write_scoreboard(board: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``scores.json`` and ``scores.md`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("scores.json", json.dumps(board, indent=2, default=_json_default)),
                       ("scores.md", format_scoreboard(board) + "\n")):
        path = out / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def plot_trajectories(policies: Mapping[str, Any], env_id: str, seed: int, out_dir: str | Path,
                      **env_kwargs: Any) -> Path | None:
    """``trajectories.png``: each policy's UAV path on one held-out episode (colour = transmit
    power), over the users and the eavesdropper's disc. None for envs without a UAV position."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

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
    fig = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.add_patch(Circle(tuple(geo["eve_xy"]), max(scenario.eve_radius_m, 1.0), color="tab:red", alpha=0.15,
                        label="eavesdropper region"))
    ax.scatter(geo["user_xy"][:, 0], geo["user_xy"][:, 1], marker="s", color="k", label="users", zorder=4)
    ax.plot(*geo["start_xy"], "ko")
    ax.plot(*geo["end_xy"], "k*", markersize=12)
    markers = "o^sDv<>p"
    sc = None
    for i, (name, policy) in enumerate(policies.items()):
        rec = evaluate(policy, env_id, [seed], trace=("position_m", "transmit_power_w"), **env_kwargs)[0]
        path = np.vstack([geo["start_xy"], np.asarray(rec["trace"]["position_m"], dtype=np.float64)])
        power = np.asarray(rec["trace"]["transmit_power_w"], dtype=np.float64)
        ax.plot(path[:, 0], path[:, 1], "-", color="0.5", lw=0.8)
        sc = ax.scatter(path[1:, 0], path[1:, 1], c=power, cmap="plasma", vmin=0.0,
                        vmax=scenario.peak_power_w, s=16, marker=markers[i % len(markers)], label=name, zorder=3)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="transmit power (W)")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{env_id}, seed {seed}")
    ax.legend(fontsize=7, loc="best")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path_png = out / "trajectories.png"
    tmp = out / "trajectories.tmp.png"
    fig.savefig(tmp)
    tmp.replace(path_png)
    return path_png


def baseline_policies(env_id: str) -> dict[str, Any]:
    """The registered baseline classes of an env id (empty if it has none)."""
    from baselines import BASELINES

    return dict(BASELINES.get(env_id, {}))

