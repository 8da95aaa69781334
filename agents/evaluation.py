"""One metric code path: run any policy on an env id over seeds, and rank policies on a scoreboard.

Every number comes from the env's ``info`` (per-step and the ``episode_metrics`` of the last step),
which the core produced. Policies (trained SB3 models or baselines) only choose actions; the only
quantities measured here rather than read from ``info`` are the wall time spent inside the policy
and the fingerprint of each episode's layout (``user_xy`` of the reset ``info``).

Scoring integrity: a policy is *feasible* when none of :data:`CONSTRAINTS` is violated on any of
its episodes; the scoreboard ranks feasible policies above infeasible ones, each group by the env's
primary metric, and states violation rates, decision times and how many distinct layouts the
held-out episodes hold.

This module owns scoring: running policies (:func:`evaluate`, :func:`run_policy`), feasibility
(:data:`CONSTRAINTS`, :func:`feasibility`), layouts (:func:`layout_fingerprint`), confidence
intervals (:func:`summarise`), the scoreboard (:func:`scoreboard`, :func:`format_scoreboard`,
:func:`write_scoreboard`) and metric units and labels (:func:`unit`, :func:`metric_label`). Figures
are :mod:`agents.plots` (the trajectory figure's names are re-exported here).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import gymnasium as gym
import numpy as np
from scipy import stats

import secure_env  # noqa: F401  (registers the env ids)
# re-exported: the trajectory figure lives in agents.plots (matplotlib only when drawn)
from agents.plots import (TRAJECTORY_COLOURS, TRAJECTORY_MARKERS, TRAJECTORY_STYLES,  # noqa: F401
                          plot_trajectories, trajectory_figure)

#: evaluation seeds start here, far from the training seeds a run uses
HELD_OUT_SEED = 1_000_000
#: R_min counts as met when the largest shortfall is at most this fraction of R_min ...
RMIN_REL_TOL = 1e-6
#: ... or at most this many bit/s (R_min is recovered from the metrics as
#: ``min_user_rate_bps + min_rate_shortfall_bps`` whenever the shortfall is positive)
RMIN_ABS_TOL_BPS = 1e-6
#: reset-``info`` keys whose values make up an episode's layout (absent keys are skipped)
LAYOUT_KEYS = ("user_xy", "eve_xy", "eve_discs")
#: decimals the layout arrays are rounded to before fingerprinting
LAYOUT_DECIMALS = 6
#: record keys that are not numeric episode metrics
_NON_METRIC_KEYS = frozenset({"seed", "layout", "trace"})


def held_out_seeds(n: int, offset: int = HELD_OUT_SEED) -> list[int]:
    """The ``n`` evaluation seeds every policy of a scoreboard is run on."""
    return [offset + i for i in range(n)]


def make_env(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` with a one-line ``ValueError`` for an unknown id."""
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("secure_env/"))
        raise ValueError(f"unknown env id {env_id!r}; registered: {known}")
    return gym.make(env_id, **env_kwargs)


def check_env_id(env_id: str) -> None:
    """ValueError unless ``env_id`` is one of this library's ids: only those have baselines, layouts
    and a primary metric to score (train other ids with Stable-Baselines3 or rl-zoo3 directly)."""
    known = sorted(k for k in gym.registry if k.startswith("secure_env/"))
    if env_id not in known:
        what = f"env {env_id!r}" if env_id in gym.registry else f"unknown env id {env_id!r}"
        raise ValueError(f"{what}: train.py trains and scores the library's ids only ({', '.join(known)}); "
                         f"train other envs with Stable-Baselines3 or rl-zoo3 directly")


def _bind(policy: Any, env: gym.Env) -> Any:
    """Baselines are built from an env: accept a class, a factory or a bound planner."""
    if isinstance(policy, type):
        return policy(env)
    if hasattr(policy, "bind"):
        policy.bind(env)
    return policy


# -- feasibility ----------------------------------------------------------------------------------
def _nonzero(key: str) -> Callable[[Mapping[str, float]], bool]:
    """Violated unless ``metrics[key] == 0`` (a NaN counts as violated)."""
    return lambda m: not (m[key] == 0)


def _rmin_short(m: Mapping[str, float]) -> bool:
    """Violated when the largest R_min shortfall exceeds :data:`RMIN_REL_TOL` of R_min, or
    :data:`RMIN_ABS_TOL_BPS` whichever is larger (NaN counts as violated)."""
    short = m["min_rate_shortfall_bps"]
    r_min = m.get("min_user_rate_bps", 0.0) + short if short > 0 else 0.0
    return not (short <= max(RMIN_ABS_TOL_BPS, RMIN_REL_TOL * r_min))


@dataclass(frozen=True)
class Constraint:
    """A hard constraint checked on an episode's ``episode_metrics`` when ``key`` is among them."""

    name: str
    key: str
    description: str
    violated: Callable[[Mapping[str, float]], bool] = field(repr=False)


#: the hard constraints of every env, keyed by the episode metric that reports them; a key absent
#: from an env's ``episode_metrics`` is not checked (so the table is the same for every env id)
CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("leakage", "leakage_violations", "no leakage violation slot", _nonzero("leakage_violations")),
    Constraint("power", "power_violations", "no power violation slot", _nonzero("power_violations")),
    Constraint("r_min", "min_rate_shortfall_bps",
               f"R_min met (shortfall <= max({RMIN_REL_TOL:g} R_min, {RMIN_ABS_TOL_BPS:g} bit/s))", _rmin_short),
    Constraint("destination", "destination_reached", "q_F reached", lambda m: not (m["destination_reached"] >= 1)),
    Constraint("qkd_overrun", "qkd_overrun_slots", "no QKD overrun slot", _nonzero("qkd_overrun_slots")),
    Constraint("infeasible_frames", "infeasible_frames", "no infeasible frame", _nonzero("infeasible_frames")),
)


def episode_violations(metrics: Mapping[str, Any]) -> dict[str, bool]:
    """Each checked constraint's name -> whether this episode violates it (only keys present)."""
    return {c.name: bool(c.violated(metrics)) for c in CONSTRAINTS if c.key in metrics}


def feasibility(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Feasibility of a policy from its episode records.

    Returns ``feasible`` (at least one episode and no violation in any), ``violation_rate`` (the
    fraction of episodes with any violation), ``violation_rates`` (per checked constraint) and
    ``constraints`` (the names checked: those whose metric key some episode reports).
    """
    per_episode = [episode_violations(r) for r in records]
    names = [c.name for c in CONSTRAINTS if any(c.name in v for v in per_episode)]
    n = len(per_episode)
    rates = {name: (sum(v.get(name, False) for v in per_episode) / n if n else math.nan) for name in names}
    rate = sum(any(v.values()) for v in per_episode) / n if n else math.nan
    return {"feasible": bool(n and rate == 0), "violation_rate": rate, "violation_rates": rates,
            "constraints": names}


# -- layouts --------------------------------------------------------------------------------------
def layout_fingerprint(reset_info: Mapping[str, Any]) -> str | None:
    """A short hash of the reset ``info``'s layout arrays (:data:`LAYOUT_KEYS`, rounded to
    :data:`LAYOUT_DECIMALS`), or None when the env reports none (then every episode counts as
    its own layout)."""
    parts = [(key, np.round(np.asarray(reset_info[key], dtype=np.float64), LAYOUT_DECIMALS) + 0.0)
             for key in LAYOUT_KEYS if key in reset_info]
    if not parts:
        return None
    h = hashlib.sha1()
    for key, arr in parts:
        h.update(key.encode() + repr(arr.shape).encode() + arr.tobytes())
    return h.hexdigest()[:16]


def count_layouts(records: Iterable[Mapping[str, Any]]) -> int:
    """Distinct layouts among episode records; an episode without a fingerprint is its own layout
    (identified by its seed)."""
    keys = {r.get("layout") if r.get("layout") is not None else ("seed", r.get("seed")) for r in records}
    return len(keys)


# -- running a policy -----------------------------------------------------------------------------
@dataclass
class PolicyRun:
    """What :func:`run_policy` returns: the episode records and the bound policy instance (whose
    optional ``stats`` counters can be read afterwards)."""

    records: list[dict[str, Any]]
    policy: Any
    bind_time_s: float


def run_policy(policy: Any, env_id: str, seeds: Iterable[int], trace: Iterable[str] = (),
               **env_kwargs: Any) -> PolicyRun:
    """:func:`evaluate`, also returning the bound policy (a class is built as ``cls(env)``).

    ``decision_time_s`` of a record is the wall time (``time.perf_counter``) spent inside the
    policy during that episode: every ``predict`` call (a baseline plans lazily inside its first
    ``predict`` of a new layout), plus, for the first episode, binding or building the policy.
    """
    trace = tuple(trace)
    overrides = dict(getattr(policy, "env_overrides", {}) or {})
    env = make_env(env_id, **{**env_kwargs, **overrides})
    try:
        t0 = time.perf_counter()
        policy = _bind(policy, env)
        bind_time = time.perf_counter() - t0
        records = []
        for i, seed in enumerate(seeds):
            obs, reset_info = env.reset(seed=int(seed))
            layout = layout_fingerprint(reset_info)
            state: Any = None
            start = True
            ret, cost, steps = 0.0, 0.0, 0
            decide = bind_time if i == 0 else 0.0
            traced: dict[str, list[Any]] = {key: [] for key in trace}
            while True:
                t0 = time.perf_counter()
                action, state = policy.predict(obs, state=state, episode_start=np.array([start]),
                                               deterministic=True)
                decide += time.perf_counter() - t0
                start = False
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                cost += float(info.get("cost", 0.0))
                for key in trace:
                    traced[key].append(info.get(key))
                steps += 1
                if terminated or truncated:
                    break
            rec: dict[str, Any] = {"seed": int(seed), "return": ret, "steps": steps, "cost": cost,
                                   "decision_time_s": decide, "layout": layout}
            rec.update({k: float(v) for k, v in info.get("episode_metrics", {}).items()})
            if trace:
                rec["trace"] = traced
            records.append(rec)
        return PolicyRun(records=records, policy=policy, bind_time_s=bind_time)
    finally:
        env.close()


def evaluate(policy: Any, env_id: str, seeds: Iterable[int], trace: Iterable[str] = (),
             **env_kwargs: Any) -> list[dict[str, Any]]:
    """Run ``policy`` for one episode per seed and return per-episode metrics from ``info``.

    ``policy`` is anything with SB3's ``predict(obs, state, episode_start, deterministic)``, or a
    baseline class (built as ``cls(env)``). A baseline's ``env_overrides`` are merged into the env
    keywords. Each record has ``seed``, ``return``, ``steps``, ``cost`` (sum of ``info["cost"]``),
    ``decision_time_s`` (wall time inside the policy, see :func:`run_policy`), ``layout`` (a
    fingerprint of the reset ``info``'s ``user_xy``, None when the env reports none) and every key
    of the last step's ``info["episode_metrics"]``; with ``trace`` keys it also has ``trace``: each
    key's per-step ``info`` values (for plots).
    """
    return run_policy(policy, env_id, seeds, trace, **env_kwargs).records


def primary_metric(env_id: str) -> str:
    """The env's headline metric (a key of ``episode_metrics``), falling back to the return."""
    env_cls = gym.registry[env_id].entry_point
    if isinstance(env_cls, str):
        module, name = env_cls.split(":")
        env_cls = getattr(__import__(module, fromlist=[name]), name)
    return getattr(env_cls, "primary_metric", "return")


def summarise(values: Iterable[float], normal: bool = False) -> dict[str, float]:
    """Mean and 95 % confidence half-width of a sample (NaN for fewer than 2 values): Student t
    (scoreboards, sweeps), or with ``normal`` the normal approximation 1.96 s / sqrt(n) (the
    reproduced figures, :mod:`agents.reproduce`)."""
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n > 1:
        quantile = 1.96 if normal else stats.t.ppf(0.975, n - 1)
        half = float(quantile * x.std(ddof=1) / math.sqrt(n))
    else:
        half = math.nan
    return {"mean": mean, "ci95": half, "n": n}


# -- the scoreboard -------------------------------------------------------------------------------
def rank_policies(rows: Mapping[str, Mapping[str, Any]], metric: str) -> list[str]:
    """Names best first: feasible rows before infeasible ones, each group by the mean of
    ``metric`` (descending; a NaN mean last in its group; ties keep the input order)."""
    def key(name: str) -> tuple[int, float]:
        mean = rows[name]["metrics"][metric]["mean"]
        return (0 if rows[name]["feasible"] else 1, -mean if math.isfinite(mean) else math.inf)

    return sorted(rows, key=key)


def best_baseline(rows: Mapping[str, Mapping[str, Any]], metric: str) -> tuple[str | None, bool]:
    """The reference of the ratio column: the best feasible baseline by ``metric``, or the best
    baseline when none is feasible. Returns (name or None, whether it is feasible)."""
    base = [n for n, r in rows.items() if r["kind"] == "baseline"
            and math.isfinite(r["metrics"][metric]["mean"])]
    feasible = [n for n in base if rows[n]["feasible"]]
    pool = feasible or base
    if not pool:
        return None, False
    best = max(pool, key=lambda n: rows[n]["metrics"][metric]["mean"])
    return best, bool(feasible)


def score_records(records: list[dict[str, Any]], kind: str = "agent",
                  policy_stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One scoreboard row from a policy's episode records: metric summaries, feasibility,
    decision time, layout count and the policy's ``stats``. With a single layout every CI is NaN
    (the episodes repeat one experiment)."""
    keys = [k for k in records[0] if k not in _NON_METRIC_KEYS]
    layouts = count_layouts(records)
    metrics = {k: summarise(r[k] for r in records) for k in keys}
    if layouts == 1:
        for s in metrics.values():
            s["ci95"] = math.nan
    times = [r["decision_time_s"] for r in records if "decision_time_s" in r]
    return {"kind": kind, "metrics": metrics, **feasibility(records),
            "decision_time_s": {"mean": float(np.mean(times)) if times else math.nan,
                                "max": float(np.max(times)) if times else math.nan,
                                "total": float(np.sum(times)) if times else math.nan},
            "layouts": layouts, "policy_stats": dict(policy_stats or {}), "episodes": records}


def scoreboard(policies: Mapping[str, Any], env_id: str, seeds: Iterable[int],
               baseline_names: Iterable[str] = (), **env_kwargs: Any) -> dict[str, Any]:
    """Evaluate every policy on the same seeds; rank feasible policies above infeasible ones,
    each group by the env's primary metric.

    ``policies`` maps a name to a policy (or baseline class); names in ``baseline_names`` are the
    baselines the ratio column refers to: ratio = policy mean / mean of the best feasible baseline
    (of the best baseline when none is feasible; ``ratio_reference`` says which). Each row has
    ``feasible``, ``violation_rate``, ``violation_rates``, ``decision_time_s`` (mean, max, total
    per episode), ``layouts`` and ``policy_stats`` (the bound policy's ``stats`` counters after
    the run, empty when it has none).
    """
    seeds = list(seeds)
    metric = primary_metric(env_id)
    baseline_names = set(baseline_names)
    rows: dict[str, Any] = {}
    for name, policy in policies.items():
        run = run_policy(policy, env_id, seeds, **env_kwargs)
        rows[name] = score_records(run.records, "baseline" if name in baseline_names else "agent",
                                   getattr(run.policy, "stats", None))
    ref, ref_feasible = best_baseline(rows, metric)
    best = rows[ref]["metrics"][metric]["mean"] if ref is not None else math.nan
    for row in rows.values():
        m = row["metrics"][metric]["mean"]
        row["ratio_to_best_baseline"] = m / best if math.isfinite(best) and best != 0 else math.nan
    all_records = [r for row in rows.values() for r in row["episodes"]]
    return {"env_id": env_id, "env_kwargs": dict(env_kwargs), "seeds": seeds, "metric": metric,
            "ranking": rank_policies(rows, metric), "layouts": count_layouts(all_records),
            "layouts_fingerprinted": all(r.get("layout") is not None for r in all_records),
            "ratio_reference": {"policy": ref, "feasible": ref_feasible},
            "constraints": {c.name: c.description for c in CONSTRAINTS
                            if any(c.name in row["constraints"] for row in rows.values())},
            "policies": rows}


def format_scoreboard(board: Mapping[str, Any]) -> str:
    """A Markdown board (best first): feasibility, mean and CI (or "n/a (1 layout)"), ratio to the
    reference baseline, violation rates, decision time per episode, then notes on the layouts,
    the infeasible policies and non-zero policy stats."""
    metric = board["metric"]
    scale, unit = _unit(metric)
    n_ep = len(board["seeds"])
    layouts = board.get("layouts")
    lines = [f"Scoreboard: {board['env_id']}  ({n_ep} held-out episodes, metric {metric}{unit})", ""]
    if layouts == 1:
        lines.append(f"All {n_ep} episodes are one layout (fixed users); no confidence interval."
                     if n_ep > 1 else "One episode, one layout; no confidence interval.")
    elif layouts is not None:
        lines.append(f"{layouts} distinct layouts over {n_ep} episodes"
                     + ("." if board.get("layouts_fingerprinted", True)
                        else " (the env reports no layout at reset: each episode counts as its own)."))
    constraints = board.get("constraints", {})
    if constraints:
        lines.append("Feasible = on every episode: " + "; ".join(constraints.values())
                     + ". Feasible policies rank above infeasible ones, whatever their " + metric + ".")
    ref = board.get("ratio_reference", {})
    if ref.get("policy") is not None:
        lines.append(f"Ratio reference: {ref['policy']} ("
                     + ("best feasible baseline" if ref["feasible"] else "best baseline; no baseline is feasible")
                     + ").")
    lines += ["",
              f"| rank | policy | kind | feasible | mean{unit} | 95% CI{unit} | ratio to best baseline | "
              "violation rate | decision time / episode: mean (max) | mean cost |",
              "|---:|---|---|:---:|---:|---:|---:|---|---:|---:|"]
    for i, name in enumerate(board["ranking"], 1):
        row = board["policies"][name]
        s = row["metrics"][metric]
        cost = row["metrics"].get("cost", {"mean": math.nan})["mean"]
        ci = "n/a (1 layout)" if row.get("layouts") == 1 else (
            f"±{s['ci95'] / scale:.4f}" if math.isfinite(s["ci95"]) else "n/a")
        feasible = "yes" if row.get("feasible") else "**no**"
        dt = row.get("decision_time_s", {})
        lines.append(f"| {i} | {name} | {row['kind']} | {feasible} | {s['mean'] / scale:.4f} | {ci} | "
                     f"{row['ratio_to_best_baseline']:.4f} | {_violations_cell(row)} | "
                     f"{_fmt_time(dt.get('mean', math.nan))} ({_fmt_time(dt.get('max', math.nan))}) | {cost:.3g} |")
    infeasible = [n for n in board["ranking"] if not board["policies"][n].get("feasible", True)]
    if infeasible:
        lines += ["", "Infeasible (ranked below every feasible policy): " + "; ".join(
            f"{n} ({_violations_text(board['policies'][n])})" for n in infeasible) + "."]
    stat_lines = [f"- {n}: " + ", ".join(f"{k} {_fmt_num(v)}" for k, v in row["policy_stats"].items() if v)
                  for n, row in ((n, board["policies"][n]) for n in board["ranking"])
                  if any(v for v in row.get("policy_stats", {}).values())]
    if stat_lines:
        lines += ["", "Policy stats (cumulative counters after the run):", *stat_lines]
    return "\n".join(lines)


def _violations_cell(row: Mapping[str, Any]) -> str:
    """``0`` or e.g. ``1.00 (leakage 1.00, r_min 0.40)`` (only the constraints ever violated)."""
    rate = row.get("violation_rate", math.nan)
    if rate == 0:
        return "0"
    parts = ", ".join(f"{k} {v:.2f}" for k, v in row.get("violation_rates", {}).items() if v)
    return f"{rate:.2f} ({parts})" if parts else f"{rate:.2f}"


def _violations_text(row: Mapping[str, Any]) -> str:
    """e.g. ``leakage in 100% of episodes, r_min in 40% of episodes``."""
    parts = [f"{k} in {v:.0%} of episodes" for k, v in row.get("violation_rates", {}).items() if v]
    return ", ".join(parts) if parts else "no episodes scored"


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    return f"{seconds:.3g} s" if seconds >= 1.0 else f"{seconds * 1e3:.3g} ms"


def _fmt_num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float, np.integer, np.floating)) else str(v)


def unit(metric: str) -> tuple[float, str]:
    """(scale, label) of a metric's display unit: values divided by ``scale`` are in the unit the
    label names (``" (kbit/J)"`` for ``*_bits_per_joule``, ``" (Mbit/s)"`` for ``*_bps``; else
    ``(1.0, "")``). Every table and plot of the project shows metrics through this one helper."""
    if metric.endswith("_bps"):
        return 1e6, " (Mbit/s)"
    if metric.endswith("_bits_per_joule"):
        return 1e3, " (kbit/J)"
    return 1.0, ""


_unit = unit  # the former private name

#: each primary metric in words (axis labels and titles)
METRIC_WORDS = {
    "energy_efficiency_bits_per_joule": "energy efficiency",
    "secure_energy_efficiency_bits_per_joule": "secure energy efficiency",
    "mean_min_secure_rate_bps": "mean minimal secure rate",
}


def metric_label(metric: str) -> str:
    """A metric in words with its display unit (:func:`unit`), e.g. ``"secure energy efficiency
    (kbit/J)"``; an unknown metric's name with spaces for underscores."""
    words = METRIC_WORDS.get(metric)
    if words is None:
        words = metric
        for suffix in ("_bits_per_joule", "_bps"):
            words = words.removesuffix(suffix)
        words = words.replace("_", " ")
    return words + unit(metric)[1]


def write_scoreboard(board: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``scores.json`` (strict JSON: NaN and inf become null) and ``scores.md`` atomically
    into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("scores.json", json.dumps(_finite(board), indent=2, allow_nan=False, default=_json_default)),
                       ("scores.md", format_scoreboard(board) + "\n")):
        path = out / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float (NaN CI, NaN ratio) replaced by None, recursively."""
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def baseline_policies(env_id: str) -> dict[str, Any]:
    """The registered baseline classes of an env id (empty if it has none)."""
    from baselines import BASELINES

    return dict(BASELINES.get(env_id, {}))
