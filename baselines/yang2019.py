"""Analytic planners of Yang et al. 2019 for QkdNoma-v0: Algorithm 1, TDMA and EXH.

All solvers are batched over leading axes (frames or restarts) and use the corrected Theorems 1-2 of
``../shared/spec/yang2019_model.md``. Every objective value they compare is evaluated by
:func:`secure_env.core.qkd_noma.play_frame`, the same function the env steps with.

Notation: K users, gains h, distances d, basis probabilities eps, data time t (= t_{K+1}),
frame T, bandwidth B, noise sigma^2, A = 4|alpha|^2|beta|^2.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core import qkd_noma as model
from secure_env.core.noma import noma_rates, sic_order
from secure_env.core.qkd import (basis_prob_for_error_rate, basis_prob_for_photons, error_rate,
                                 photon_count, qkd_time)

Array = NDArray[np.float64]

#: bisection steps on R0 (relative precision 2^-60 of the bracket, below float64 resolution)
BISECTION_STEPS = 60
#: points per round of the grid-and-zoom search over t_{K+1} (through rho, see best_eps_for_rates)
T_GRID = 25
#: zoom rounds of that search (each narrows the bracket by (T_GRID - 1) / 2 = 12)
T_ROUNDS = 8
#: default start of Algorithm 1 (spec: "e.g. eps_k = 0.5, shrunk to fit T")
DEFAULT_EPS0 = 0.5


# --------------------------------------------------------------------------------------------
# Theorem 1: optimal NOMA powers for fixed eps and t_{K+1}
# --------------------------------------------------------------------------------------------
def required_power(r0: Array, b: Array, h_sorted: Array, noise_w: float) -> Array:
    """P_req(R0) = sum_l (sigma^2/h_l)(2^{b_l R0} - 1) 2^{sum_{j<l} b_j R0}: the total power that
    gives every user secure rate R0 (users sorted by ascending gain). Increasing in R0.

    ``r0`` has the batch shape, ``b`` and ``h_sorted`` (..., K).
    """
    x = b * r0[..., None]
    before = np.cumsum(x, axis=-1) - x
    return np.sum(noise_w / h_sorted * np.expm1(x * np.log(2.0)) * np.exp2(before), axis=-1)


def theorem1_powers(h_sorted: Array, b: Array, p_max_w: float, noise_w: float) -> tuple[Array, Array]:
    """Max-min powers of problem (12) for users sorted by ascending gain (corrected Theorem 1).

    ``b_k = T / (t_{K+1} (1 - e_k) B)``. R0 is found by bisection on P_req(R0) = P_max (the left
    side of the paper's (14) is not monotone), then the powers follow from recursion (C.3) run
    from the strongest user: a_{K+1} = 0, a_k = 2^{b_k R0} a_{k+1} + (2^{b_k R0} - 1) sigma^2 / h_k,
    p_k = a_k - a_{k+1}. Returns (powers (..., K), R0 (...)); every user gets secure rate R0 and
    the powers sum to P_max (to float precision).
    """
    # each user alone with all the power bounds R0 from above
    hi = np.min(np.log2(1.0 + p_max_w * h_sorted / noise_w) / b, axis=-1)
    lo = np.zeros_like(hi)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = required_power(mid, b, h_sorted, noise_w) <= p_max_w
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    r0 = lo
    g = np.exp2(b * r0[..., None])
    k = h_sorted.shape[-1]
    a = np.zeros(h_sorted.shape[:-1] + (k + 1,))
    for i in range(k - 1, -1, -1):
        a[..., i] = g[..., i] * a[..., i + 1] + (g[..., i] - 1.0) * noise_w / h_sorted[..., i]
    return a[..., :-1] - a[..., 1:], r0


def theorem1_closed_form(h_sorted: Array, b: Array, r0: Array, p_max_w: float,
                         noise_w: float) -> Array:
    """The corrected closed form of Theorem 1 (spec), a second route to the same powers:

    p_k = P 2^{-S_{k-1}} (2^{x_k} - 1) + (2^{x_k} - 1) sigma^2 / (2^{x_k} h_k)
          - sum_{l<k} (2^{x_l} - 1)(2^{x_k} - 1) sigma^2 / (2^{S_k - S_{l-1}} h_l)

    with x_k = b_k R0 and S_k = x_1 + ... + x_k. (The first term is written as in (C.4)-(C.5):
    P_max (2^{x_k} - 1) / 2^{S_k}.)
    """
    x = b * r0[..., None]
    s = np.cumsum(x, axis=-1)
    gk = np.exp2(x) - 1.0
    k = h_sorted.shape[-1]
    p = p_max_w * gk / np.exp2(s) + gk * noise_w / (np.exp2(x) * h_sorted)
    for kk in range(k):
        for ll in range(kk):
            s_from_l = s[..., kk] - (s[..., ll - 1] if ll > 0 else 0.0)
            p[..., kk] -= gk[..., ll] * gk[..., kk] * noise_w / (np.exp2(s_from_l) * h_sorted[..., ll])
    return p


# --------------------------------------------------------------------------------------------
# Theorem 2: optimal eps and QKD times for fixed powers and t_{K+1}
# --------------------------------------------------------------------------------------------
def theorem2(rates: Array, distances: Array, data_time: Array, scenario: Any) -> tuple[Array, Array]:
    """Largest common secure rate R0 and the eps achieving it for fixed NOMA rates (corrected Thm 2).

    ``rates``/``distances`` (..., K); ``data_time`` (..., G) candidate values of t_{K+1}.
    For R0, user k may lose e_k = 1 - R0 T / (t r_k) of its data, so eps_k =
    1 / (1 + sqrt(X_k - 1/2)) with X_k = A t r_k / (2 (t r_k - R0 T)) (clipped to 1 when e_k >= A);
    R0 is the largest value whose QKD times (with the photon ceiling) fit in T - t, by bisection.
    Returns (R0 (..., G), eps (..., G, K)).
    """
    s = scenario
    r = rates[..., None, :]
    d = distances[..., None, :]
    t = data_time[..., None]
    budget = s.frame_s - data_time
    hi = np.min(data_time[..., None] * rates[..., None, :], axis=-1) / s.frame_s
    lo = np.zeros_like(hi)

    def eps_at(r0: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            allowed = 1.0 - r0[..., None] * s.frame_s / (t * r)
        return basis_prob_for_error_rate(allowed, s.alpha_beta)

    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        used = qkd_time(eps_at(mid), d, s.photons_m, s.light_speed_mps).sum(axis=-1)
        ok = used <= budget
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo, eps_at(lo)


def _min_secure_rate(scenario: Any, gains: Array, distances: Array, eps: Array, split: Array) -> Array:
    """The env's own frame metric (min secure rate, 0 when infeasible)."""
    out = model.play_frame(scenario, gains, distances, eps, split)
    return np.where(out["feasible"], out["min_secure_rate_bps"], 0.0)


def snap_to_photon_count(eps: Array, scenario: Any) -> Array:
    """The smallest eps with the same photon count: eps' = sqrt(8 m / ceil(8 m / eps^2)) <= eps.

    Same QKD time, lower error rate: a free improvement the ceiling leaves (the true decision is the
    integer photon count N_k, and for a given N the best eps is sqrt(8 m / N))."""
    return np.minimum(basis_prob_for_photons(photon_count(eps, scenario.photons_m), scenario.photons_m),
                      eps)


def eps_for_common_rate(rho: Array, rates: Array, scenario: Any) -> Array:
    """Theorem 2's eps for a common pre-time rate rho = R0 T / t_{K+1}: user k may lose
    e_k = 1 - rho / r_k of its data, so eps_k = 1 / (1 + sqrt(X_k - 1/2)) with X_k - 1/2 =
    (A - e_k) / (2 e_k), clipped to 1 where e_k >= A. ``rho`` (...), ``rates`` (..., K)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        allowed = 1.0 - rho[..., None] / rates
    return basis_prob_for_error_rate(allowed, scenario.alpha_beta)


def best_eps_for_rates(scenario: Any, gains: Array, distances: Array, split: Array,
                       rates: Array) -> tuple[Array, Array]:
    """Theorem 2 plus the one-dimensional search over t_{K+1} for fixed powers (Algorithm 1 l. 4-7).

    The search over t_{K+1} is run through the equivalent variable rho = R0 T / t_{K+1}, the common
    rate before the time factor: for each rho, eps(rho) from Theorem 2's closed form fixes the QKD
    times, and t_{K+1} = T - sum_k t_k(eps) is exactly the data time for which Theorem 2's bisection
    returns that eps (the map is one-to-one; ``theorem2`` is kept as the second route and tested
    against it). This removes the inner bisection. Each eps is then snapped down to the boundary of
    its photon count (:func:`snap_to_photon_count`), which Theorem 2's supremum also exploits. rho = r_min (1 - e_b) is searched over the error
    rate e_b of the binding (lowest-rate) user on a log grid of ``T_GRID`` points in [1e-12, 1],
    refined ``T_ROUNDS`` times around the best point. Every candidate is scored by the env metric.
    Returns (eps (..., K), objective (...)).
    """
    s = scenario
    batch = gains.shape[:-1]
    r_min = rates.min(axis=-1)
    lo = np.full(batch, -12.0)   # log10 of the binding user's error rate
    hi = np.zeros(batch)
    best_obj = np.full(batch, -1.0)
    best_eps = np.ones(gains.shape)
    frac = np.linspace(0.0, 1.0, T_GRID)
    for _ in range(T_ROUNDS):
        grid = lo[..., None] + (hi - lo)[..., None] * frac                 # (..., G)
        rho = r_min[..., None] * (1.0 - np.power(10.0, grid))
        eps = snap_to_photon_count(eps_for_common_rate(rho, rates[..., None, :], s), s)  # (..., G, K)
        obj = _min_secure_rate(s, gains[..., None, :], distances[..., None, :], eps,
                               split[..., None, :])                         # (..., G)
        i = np.argmax(obj, axis=-1)
        obj_i = np.take_along_axis(obj, i[..., None], axis=-1)[..., 0]
        eps_i = np.take_along_axis(eps, i[..., None, None], axis=-2)[..., 0, :]
        better = obj_i > best_obj
        best_obj = np.where(better, obj_i, best_obj)
        best_eps = np.where(better[..., None], eps_i, best_eps)
        step = (hi - lo) / (T_GRID - 1)
        centre = np.take_along_axis(grid, i[..., None], axis=-1)[..., 0]
        lo, hi = centre - step, np.minimum(centre + step, 0.0)
    return best_eps, best_obj


# --------------------------------------------------------------------------------------------
# Algorithm 1
# --------------------------------------------------------------------------------------------
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


def exhaustive(scenario: Any, gains: Array, distances: Array, rng: np.random.Generator,
               restarts: int = 100) -> Plan:
    """EXH: Algorithm 1 from ``restarts`` random starts (eps log-uniform in [EPS_MIN, 1]) plus the
    default start, best kept. Single frame (gains (K,)); the starts run as one batch."""
    k = gains.shape[-1]
    starts = np.power(10.0, rng.uniform(np.log10(model.EPS_MIN), 0.0, size=(restarts, k)))
    starts = np.concatenate([np.full((1, k), DEFAULT_EPS0), starts], axis=0)
    plans = algorithm1(scenario, np.broadcast_to(gains, starts.shape),
                       np.broadcast_to(distances, starts.shape), eps0=starts)
    i = int(np.argmax(plans.objective_bps))  # ties keep the default start (index 0)
    return Plan(eps=plans.eps[i], split=plans.split[i], objective_bps=plans.objective_bps[i],
                history=[h[i] for h in plans.history])


# --------------------------------------------------------------------------------------------
# TDMA benchmark
# --------------------------------------------------------------------------------------------
def _golden_min(f: Any, lo: Array, hi: Array, steps: int = 48) -> Array:
    """Vectorised golden-section minimisation of a unimodal f on [lo, hi] (elementwise)."""
    invphi = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    c = b - invphi * (b - a)
    d = a + invphi * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        left = fc < fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new = b - invphi * (b - a)
        d_new = a + invphi * (b - a)
        # reuse the surviving interior point
        keep_c = np.where(left, c, d)
        keep_f = np.where(left, fc, fd)
        c = np.where(left, c_new, keep_c)
        d = np.where(left, keep_c, d_new)
        f_new = f(np.where(left, c, d))
        fc = np.where(left, f_new, keep_f)
        fd = np.where(left, keep_f, f_new)
    return 0.5 * (a + b)


def tdma(scenario: Any, gains: Array, distances: Array) -> Plan:
    """Optimal max-min TDMA (stage 2 by TDMA, each user alone at P_max).

    With full-power rates c_k = B log2(1 + h_k P / sigma^2), giving every user secure rate R0 takes
    a data share tau_k = R0 T / ((1 - e_k) c_k) of time, so user k needs
    g_k(R0) = min_eps [t_k(eps) + R0 T / ((1 - e(eps)) c_k)] in all, and the best R0 is the largest
    with sum_k g_k(R0) <= T (bisection). The inner minimum is over log eps by golden section
    (continuous photon count); the final eps are then scored with the ceiling, the data shares
    follow the closed form tau_k proportional to 1 / ((1 - e_k) c_k), and the objective is the env
    metric. Batched over leading axes.
    """
    s = scenario
    gains = np.asarray(gains, dtype=np.float64)
    distances = np.broadcast_to(np.asarray(distances, dtype=np.float64), gains.shape)
    c = s.bandwidth_hz * np.log2(1.0 + gains * s.p_max_w / s.noise_w)
    photon_s = 8.0 * s.photons_m * distances / s.light_speed_mps    # t_k = photon_s / eps^2

    def argmin_eps(r0: Array) -> Array:
        data = r0[..., None] * s.frame_s / c

        def total(log_eps: Array) -> Array:
            e = np.exp(log_eps)
            return photon_s * np.exp(-2.0 * log_eps) + data / (1.0 - error_rate(e, s.alpha_beta))

        lo = np.full(gains.shape, np.log(1e-6))
        hi = np.full(gains.shape, np.log(1.0 - 1e-12) if s.error_constant >= 1.0 else 0.0)
        return np.exp(_golden_min(total, lo, hi))

    def need(r0: Array) -> tuple[Array, Array]:
        eps = argmin_eps(r0)
        used = photon_s / eps**2 + r0[..., None] * s.frame_s / ((1.0 - error_rate(eps, s.alpha_beta)) * c)
        return used.sum(axis=-1), eps

    lo = np.zeros(gains.shape[:-1])
    hi = 1.0 / np.sum(1.0 / c, axis=-1)    # every user's full-frame TDMA rate, no QKD, no error
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = need(mid)[0] <= s.frame_s
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    eps = snap_to_photon_count(need(lo)[1], s)
    w = 1.0 / ((1.0 - error_rate(eps, s.alpha_beta)) * c)
    split = w / w.sum(axis=-1, keepdims=True)
    tdma_s = _tdma_scenario(s)
    obj = _min_secure_rate(tdma_s, gains, distances, eps, split)
    return Plan(eps=eps, split=split, objective_bps=obj, history=[obj])


def _tdma_scenario(scenario: Any) -> Any:
    from dataclasses import replace

    return scenario if scenario.multiple_access == "tdma" else replace(scenario, multiple_access="tdma")
