"""Theorems 1 and 2 of Yang et al. 2019 (corrected, ``docs/models/qkd_noma.md``) and the
search over the data time t_{K+1} that Algorithm 1 runs for fixed powers.

Theorem 1 gives the max-min NOMA powers for fixed eps and t_{K+1}; Theorem 2 the eps (and QKD
times) for fixed powers and t_{K+1}. Every objective value is evaluated by
:func:`secure_env.core.qkd_noma.play_frame`, the same function the env steps with.

Notation: K users, gains h, distances d, basis probabilities eps, data time t (= t_{K+1}),
frame T, bandwidth B, noise sigma^2, A = 4|alpha|^2|beta|^2.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core import qkd_noma as model
from secure_env.core.qkd import (basis_prob_for_error_rate, basis_prob_for_photons, photon_count,
                                 qkd_time)

Array = NDArray[np.float64]

#: bisection steps on R0 (relative precision 2^-60 of the bracket, below float64 resolution)
BISECTION_STEPS = 60
#: points per round of the grid-and-zoom search over t_{K+1} (through rho, see best_eps_for_rates)
T_GRID = 25
#: zoom rounds of that search (each narrows the bracket by (T_GRID - 1) / 2 = 12)
T_ROUNDS = 8


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

    p_k = P (2^{x_k} - 1) / 2^{S_k} + (2^{x_k} - 1) sigma^2 / (2^{x_k} h_k)
          - sum_{l<k} (2^{x_l} - 1)(2^{x_k} - 1) sigma^2 / (2^{S_k - S_{l-1}} h_l)

    with x_k = b_k R0 and S_k = x_1 + ... + x_k (the first term as in (C.4)-(C.5); the printed
    P 2^{-S_{k-1}} (2^{x_k} - 1) is the misprint the corrected theorem replaces).
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
