"""Baselines of QuantumUav-v0: the UAV baselines' trajectory, power and schedule, plus the best
QKD basis probability of every user in every slot.

For fixed data rates r_k of a slot, the slot's objective (Dinkelbach form of the secure energy
efficiency, eta = the current secure EE) is

    F(N) = D(N) * (sum_k (1 - e_k(N_k)) r_k - eta P_tx) - eta (tau (P_C + P_fly) + P_QKD sum_k t_k),
    D(N) = tau - sum_k t_k(N_k),  t_k = d_k N_k / c,  e_k = e(sqrt(8 m / N_k)),

over the photon counts N_k >= 8 m (each count is used at the smallest eps that needs it, which has the
lowest error for that QKD time). D is affine and decreasing in N; 1 - e_k is increasing in N_k,
concave for eps_k below about 0.75 (N_k > 1.8 * 8 m) but convex above, so F is log-concave only away from
the shortest QKD phases. The per-user search therefore scans a coarse grid of 48 log-spaced
counts, then runs a golden-section search on log N_k between the best grid point's neighbours
and keeps the better of the two neighbouring integers; users are cycled (coordinate ascent)
until the counts stop changing. The tests compare it with dense grids (one and two users).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core import quantum_uav as qmodel
from secure_env.core import uav_ofdma as model

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_COARSE = 48


def slot_objective(photons: NDArray[np.float64], rate_bps: NDArray[np.float64], dist: NDArray[np.float64],
                   scenario: Any, transmit_w: Any, fixed_w: Any, eta: float) -> NDArray[np.float64]:
    """F(N) for photon counts (..., K) in slots with rates and distances (..., K) (core formulas)."""
    s = scenario
    ph = qmodel.qkd_phase(photons, dist, s.photons_m, s.light_speed_mps, s.alpha_beta)
    sec = qmodel.secure_slot(rate_bps * s.slot_s, ph["key_error_rate"], ph["qkd_time_s"], s.slot_s,
                             transmit_w, fixed_w, s.qkd_source_power_w)
    secure = sec["secure_bits_per_user"].sum(axis=-1)
    return secure - eta * sec["energy_j"] - 1e30 * (sec["overrun_s"] > 0)


def best_photons(rate_bps: NDArray[np.float64], dist: NDArray[np.float64], scenario: Any, transmit_w: Any,
                 fixed_w: Any, eta: float = 0.0, sweeps: int = 6, iters: int = 60,
                 start: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Photon counts (N, K) maximising :func:`slot_objective` in every slot (coordinate ascent).

    Start from ``start`` (default: the minimum, 8 m, for everyone). With eta = 0 the bracket
    sum_k (1 - e_k) r_k - eta P_tx is never negative, so every user's line search is unimodal;
    for eta > 0 start from the eta = 0 solution, where the bracket is positive.
    """
    s = scenario
    rate = np.atleast_2d(np.asarray(rate_bps, dtype=np.float64))
    d = np.atleast_2d(np.asarray(dist, dtype=np.float64))
    n_slots, k = rate.shape
    lo_n = 8.0 * s.photons_m
    hi_n = np.maximum(s.slot_s * s.light_speed_mps / d, lo_n)          # one user alone fills the slot
    photons = np.full((n_slots, k), lo_n) if start is None else np.asarray(start, dtype=np.float64).copy()

    def f(ph: NDArray[np.float64]) -> NDArray[np.float64]:
        return slot_objective(ph, rate, d, s, transmit_w, fixed_w, eta)

    for _ in range(sweeps):
        before = photons.copy()
        for kk in range(k):
            def at(x: NDArray[np.float64]) -> NDArray[np.float64]:
                ph = photons.copy()
                ph[:, kk] = np.exp(x)
                return f(ph)

            # coarse log grid first (1 - e is convex near eps = 1, so F need not be unimodal
            # over the whole range), then golden section between the best point's neighbours
            grid = np.linspace(0.0, 1.0, _COARSE)[None, :] * (np.log(hi_n[:, kk]) - math.log(lo_n))[:, None] \
                + math.log(lo_n)
            vals = np.stack([at(grid[:, j]) for j in range(_COARSE)], axis=1)
            j = np.argmax(vals, axis=1)
            rows = np.arange(n_slots)
            a = grid[rows, np.maximum(j - 1, 0)]
            b = grid[rows, np.minimum(j + 1, _COARSE - 1)]
            x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)

            f1, f2 = at(x1), at(x2)
            for _ in range(iters):
                left = f1 >= f2
                b = np.where(left, x2, b)
                a = np.where(left, a, x1)
                x2n = np.where(left, x1, a + _GOLDEN * (b - a))
                x1n = np.where(left, b - _GOLDEN * (b - a), x2)
                x1, x2 = x1n, x2n
                f1, f2 = at(x1), at(x2)
            best = np.exp(0.5 * (a + b))
            cands = [np.maximum(np.floor(best), lo_n), np.maximum(np.ceil(best), lo_n), np.full(n_slots, lo_n)]
            vals = []
            for cand in cands:
                ph = photons.copy()
                ph[:, kk] = cand
                vals.append(f(ph))
            pick = np.argmax(np.stack(vals), axis=0)
            photons[:, kk] = np.choose(pick, cands)
        if np.array_equal(before, photons):
            break
    return photons


#: log-spaced photon counts the secure-share bound brackets (the bound is valid for any grid)
_BOUND_GRID = 512


def secure_share_bound(scenario: Any, positions: NDArray[np.float64], user_xy: NDArray[np.float64]
                       ) -> NDArray[np.float64]:
    """An upper bound (N, K) of the share of user k's slot-n data rate that any QKD phase leaves
    secure, (1 - e_k) (tau - sum_j t_j) / tau, over every choice of photon counts.

    User k's own count N gives t_k = N d_k / c (eq. (8)) and e_k = e(sqrt(8 m / N)) (eq. (4)); every
    other user runs at least the shortest QKD phase, 8 m pairs. With t increasing and 1 - e
    increasing in N, on a bracket [N_j, N_j+1] of a log grid from 8 m to the slot's worth the share
    is at most (tau - t(N_j) - others) (1 - e(N_j+1)) / tau: the largest such product bounds every
    count, whole or not."""
    s = scenario
    dist = qmodel.user_distances(positions[:, 0:1], positions[:, 1:2], user_xy, s.altitude_m)   # (N, K)
    lo = 8.0 * s.photons_m
    hi = np.maximum(s.slot_s * s.light_speed_mps / dist, lo * (1.0 + 1e-9))
    t = np.linspace(0.0, 1.0, _BOUND_GRID)
    grid = np.exp(math.log(lo) + t * (np.log(hi) - math.log(lo))[..., None])                  # (N, K, G)
    ph = qmodel.qkd_phase(np.ceil(grid), dist[..., None], s.photons_m, s.light_speed_mps, s.alpha_beta)
    shortest = qmodel.qkd_phase(lo, dist, s.photons_m, s.light_speed_mps, s.alpha_beta)["qkd_time_s"]
    others = shortest.sum(axis=-1, keepdims=True) - shortest                                    # (N, K)
    own_time = dist[..., None] / s.light_speed_mps * grid[..., :-1]     # t at the bracket's low end
    keep = 1.0 - ph["key_error_rate"][..., 1:]                            # 1 - e at its high end
    share = np.maximum(s.slot_s - own_time - others[..., None], 0.0) * keep / s.slot_s
    return share.max(axis=-1)


def qkd_actions(scenario: Any, constants: model.SlotConstants, positions: NDArray[np.float64],
                velocities: NDArray[np.float64], power_w: NDArray[np.float64], user: NDArray[np.int64],
                user_xy: NDArray[np.float64], dinkelbach: int = 4) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """The QKD part of the action for every slot of a UAV plan, and the plan's secure EE record.

    Dinkelbach on the mission's secure EE: eta_0 = 0 (most secure bits per slot), then eta = the
    secure EE of the last choice, a few times (it moves little: transmit power is a small part of
    the energy). The record holds the chosen ``photons`` (N, K), the ``secure_ee_history`` and
    ``secure_rate_bps`` (K,), each user's mission-average secure rate with those photons (the
    rate QuantumUav-v0 holds against R_min).
    """
    s = scenario
    out = model.trajectory_outcome(positions, velocities, power_w, user, user_xy, constants)
    rate = out["bits_per_user"] / s.slot_s
    dist = qmodel.user_distances(positions[:, 0:1], positions[:, 1:2], user_xy, s.altitude_m)
    fixed = constants.circuit_power_w + out["flight_power_w"]
    tx = out["transmit_power_w"]
    eta, history = 0.0, []
    photons, sec = None, None
    for _ in range(dinkelbach):
        photons = best_photons(rate, dist, s, tx, fixed, eta, start=photons)
        ph = qmodel.qkd_phase(photons, dist, s.photons_m, s.light_speed_mps, s.alpha_beta)
        sec = qmodel.secure_slot(out["bits_per_user"], ph["key_error_rate"], ph["qkd_time_s"], s.slot_s,
                                 tx, fixed, s.qkd_source_power_w)
        see = float(np.sum(sec["secure_bits_per_user"]) / np.sum(sec["energy_j"]))
        history.append(see)
        if see <= eta * (1 + 1e-9):
            break
        eta = see
    assert photons is not None and sec is not None
    budget = qmodel.budget_for_photons(photons, dist, s.light_speed_mps)
    secure_rate = np.sum(sec["secure_bits_per_user"], axis=0) / (len(positions) * s.slot_s)
    return qmodel.encode_qkd_action(budget, s.slot_s), {"photons": photons, "secure_ee_history": history,
                                                        "secure_rate_bps": secure_rate}
