"""Algorithm 1 of Yang et al. 2019: Theorem 1 powers and Theorem 2 eps, alternated (with the spec's
corrections), batched over leading axes (frames or restarts). :class:`Plan` is the decision every
QkdNoma-v0 planner returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secure_env.core.noma import noma_rates, sic_order
from secure_env.core.qkd import error_rate, qkd_time

from baselines.yang2019.theorems import Array, best_eps_for_rates, theorem1_powers

#: default start of Algorithm 1 (spec: "e.g. eps_k = 0.5, shrunk to fit T")
DEFAULT_EPS0 = 0.5


@dataclass
class Plan:
    """A planner's decision for one or more frames (users in the env's order)."""

    eps: Array
    split: Array
    objective_bps: Array
    history: list[Array] = field(default_factory=list)


def fit_start(scenario: Any, distances: Array, eps0: Array) -> Array:
    """Shrink the QKD periods of a starting eps to fit the frame: where sum_k t_k(eps0) exceeds half
    of T, raise every eps (fewer photons) so that it takes half of T, capped at 1."""
    s = scenario
    used = qkd_time(eps0, distances, s.photons_m, s.light_speed_mps).sum(axis=-1)
    scale = np.maximum(used / (0.5 * s.frame_s), 1.0)
    return np.minimum(eps0 * np.sqrt(scale)[..., None], 1.0)


def algorithm1(scenario: Any, gains: Array, distances: Array, eps0: Array | None = None,
               max_iter: int = 20, rtol: float = 1e-9) -> Plan:
    """Algorithm 1 of the paper with the spec's corrections (power step inside the loop).

    Repeat: Theorem 1 powers for the current (eps, t_{K+1}); Theorem 2 eps with the search over
    t_{K+1} for those powers; until the objective improves by less than ``rtol`` (relative).
    The objective is non-decreasing by construction (each step is optimal given the other block);
    the best iterate is kept. ``eps0`` defaults to 0.5 for every user (shrunk to fit T).
    ``history`` holds the objective after each iteration.
    """
    s = scenario
    gains = np.asarray(gains, dtype=np.float64)
    distances = np.broadcast_to(np.asarray(distances, dtype=np.float64), gains.shape)
    if eps0 is None:
        eps0 = np.full(gains.shape, DEFAULT_EPS0)
    eps = fit_start(s, distances, np.broadcast_to(eps0, gains.shape))
    order = sic_order(gains)
    h_sorted = np.take_along_axis(gains, order, axis=-1)
    batch = gains.shape[:-1]
    best = Plan(eps=eps, split=np.full(gains.shape, 1.0 / gains.shape[-1]),
                objective_bps=np.full(batch, -1.0))
    active = np.ones(batch, dtype=bool)
    for _ in range(max_iter):
        t_data = s.frame_s - qkd_time(eps, distances, s.photons_m, s.light_speed_mps).sum(axis=-1)
        t_safe = np.maximum(t_data, 1e-12 * s.frame_s)
        # a user with e = 1 (eps = 1 at |alpha||beta| = 1/2) gets no secure rate: keep b finite
        e_sorted = np.minimum(np.take_along_axis(error_rate(eps, s.alpha_beta), order, axis=-1),
                              1.0 - 1e-12)
        b = s.frame_s / (t_safe[..., None] * (1.0 - e_sorted) * s.bandwidth_hz)
        p_sorted, _ = theorem1_powers(h_sorted, b, s.p_max_w, s.noise_w)
        power = np.empty_like(p_sorted)
        np.put_along_axis(power, order, p_sorted, axis=-1)
        split = power / power.sum(axis=-1, keepdims=True)
        # Fixed point: powers unchanged -> the eps step would return the same eps (it is
        # deterministic in the powers), so the objective has converged.
        same = np.all(np.abs(split - best.split) <= 1e-10, axis=-1) & (best.objective_bps >= 0)
        active &= ~same
        if not active.any():
            best.history.append(best.objective_bps.copy())
            break
        rates = noma_rates(gains, split * s.p_max_w, s.noise_w, s.bandwidth_hz)
        eps_new, obj = best_eps_for_rates(s, gains, distances, split, rates)
        improved = active & (obj > best.objective_bps)
        converged = obj <= np.maximum(best.objective_bps, 0.0) * (1.0 + rtol)
        best.eps = np.where(improved[..., None], eps_new, best.eps)
        best.split = np.where(improved[..., None], split, best.split)
        best.objective_bps = np.where(improved, obj, best.objective_bps)
        best.history.append(best.objective_bps.copy())
        active &= ~converged
        eps = eps_new
        if not active.any():
            break
    best.objective_bps = np.maximum(best.objective_bps, 0.0)
    return best
