"""Normalised scores, feasibility-first ranking and rliable's interval estimates.

**Normalised score** of an episode on a test layout: ``(x - x_zero) / (x_one - x_zero)`` where ``x``
is the env's primary metric and ``x_zero``, ``x_one`` are the task's two baselines' values *on that
very layout* (straight line = 0 and Algorithm 3 = 1 on the UAV tasks, TDMA = 0 and Algorithm 1 = 1
on QkdNoma-v0). A layout where the two coincide has no scale: its scores are NaN and it is left
out of the statistics (reported).

**Feasibility first.** A *run* (one algorithm, one seed, one task) is feasible when every one of its
test episodes meets every constraint of :data:`agents.evaluation.CONSTRAINTS`. The statistics of
an algorithm use its feasible runs only; its infeasible runs are listed with their violations and
the algorithm ranks below every algorithm whose runs are all feasible (an algorithm with no
feasible run has no statistics and ranks last).

**Statistics** (rliable, Agarwal et al. 2021): for each algorithm a score matrix of shape
``(runs, layouts)``; mean, median, interquartile mean (IQM) and optimality gap (to 1 = Algorithm 3)
with 95 % stratified bootstrap confidence intervals resampling runs within each layout *and* the
layouts (``task_bootstrap=True``: test layouts are a sample of the layout distribution); the
probability of improvement over a baseline (runs resampled), and performance profiles. A baseline
is deterministic: one run. rliable draws from NumPy's global generator; :func:`seeded` seeds it
for each estimate and restores it afterwards, so reports are reproducible.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

#: the aggregate metrics of every table, in rliable's names
METRICS = ("IQM", "mean", "median", "optimality gap")
#: seed of the bootstrap draws
BOOTSTRAP_SEED = 0


def normalised(value: float, zero: float, one: float) -> float:
    """``(value - zero) / (one - zero)``; NaN when ``one == zero`` or any input is not finite."""
    if not all(math.isfinite(v) for v in (value, zero, one)) or one == zero:
        return math.nan
    return (value - zero) / (one - zero)


@contextlib.contextmanager
def seeded(seed: int = BOOTSTRAP_SEED) -> Iterator[None]:
    """Seed NumPy's global generator (which rliable's bootstrap uses) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _aggregates(scores: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                     metrics.aggregate_median(scores), metrics.aggregate_optimality_gap(scores, 1.0)])


def interval_estimates(matrices: Mapping[str, np.ndarray], reps: int) -> dict[str, dict[str, Any]]:
    """Each algorithm's :data:`METRICS` with 95 % stratified bootstrap CIs (runs and layouts
    resampled). ``matrices``: name -> (runs, layouts) normalised scores without NaN."""
    from rliable import library as rly

    out: dict[str, dict[str, Any]] = {}
    for name, m in matrices.items():
        if m.size == 0:
            continue
        with seeded():
            point, ci = rly.get_interval_estimates({name: m}, _aggregates, task_bootstrap=m.shape[1] > 1,
                                                   reps=reps)
        out[name] = {metric: {"value": float(point[name][i]), "ci": [float(ci[name][0][i]), float(ci[name][1][i])]}
                     for i, metric in enumerate(METRICS)}
    return out


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int) -> dict[str, Any]:
    """P(X > Y) averaged over layouts (ties count half; rliable's Mann-Whitney form) with a 95 %
    stratified bootstrap CI over runs. ``x``, ``y``: (runs, layouts) on the same layouts."""
    from rliable import library as rly
    from rliable import metrics

    with seeded():
        point, ci = rly.get_interval_estimates({"p": (x, y)}, metrics.probability_of_improvement, reps=reps)
    lo, hi = np.ravel(ci["p"])[:2]
    return {"value": float(np.ravel(point["p"])[0]), "ci": [float(lo), float(hi)]}


def performance_profiles(matrices: Mapping[str, np.ndarray], taus: np.ndarray, reps: int
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's score distributions: the fraction of (run, layout) scores above each tau, with CIs."""
    from rliable import library as rly

    with seeded():
        return rly.create_performance_profile(dict(matrices), taus, reps=reps)


def iqm_curve(scores: np.ndarray, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """IQM per evaluation point of (runs, layouts, points) scores, with 95 % CIs (2, points)."""
    from rliable import library as rly
    from rliable import metrics

    def per_point(s: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(s[..., j]) for j in range(s.shape[-1])])

    with seeded():
        point, ci = rly.get_interval_estimates({"c": scores}, per_point, reps=reps)
    return np.asarray(point["c"]), np.asarray(ci["c"])


def rank(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Algorithms best first: those whose runs are all feasible, then those with some infeasible
    run, then those with no feasible run; each group by IQM (descending, missing last)."""
    def key(name: str) -> tuple[int, float]:
        row = rows[name]
        runs, ok = row["runs"], row["feasible_runs"]
        group = 0 if ok == runs and runs > 0 else (1 if ok > 0 else 2)
        iqm = row.get("stats", {}).get("IQM", {}).get("value", math.nan)
        return group, -iqm if math.isfinite(iqm) else math.inf

    return sorted(rows, key=key)


def score_matrix(runs: Sequence[Mapping[int, float]], layouts: Sequence[int]) -> np.ndarray:
    """(runs, layouts) from each run's layout -> score, layouts in the given order."""
    return np.array([[run[s] for s in layouts] for run in runs], dtype=np.float64).reshape(len(runs), len(layouts))
