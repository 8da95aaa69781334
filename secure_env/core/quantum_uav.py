"""The QKD phase that opens every slot of QuantumUav-v0 (Yang et al. 2019 on the UAV of Cai et al.).

In slot n the UAV at q[n] first runs QKD with each user k for t_k = d_k / c * ceil(8 m / eps_k^2)
(eq. (8) of Yang et al., d_k the 3-D UAV-user distance), then sends data in the rest of the slot,
tau - sum_k t_k. A key error rate e_k(eps_k) (eq. (4)) makes that fraction of user k's data
insecure. Every formula comes from :mod:`secure_env.core.qkd`; this module only composes them.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core.qkd import basis_prob_for_photons, error_rate, qkd_time

#: QKD time budgets span this many decades below the slot length
QKD_DECADES = 6.0


def decode_qkd_action(a: ArrayLike, slot_s: float) -> NDArray[np.float64]:
    """a in [-1, 1]^K -> QKD time budget tau 10^(D (a - 1) / 2) per user (log scale, D = 6 decades)."""
    x = np.asarray(a, dtype=np.float64).clip(-1.0, 1.0)
    return slot_s * np.power(10.0, QKD_DECADES * 0.5 * (x - 1.0))


def encode_qkd_action(budget_s: ArrayLike, slot_s: float) -> NDArray[np.float64]:
    """Inverse of :func:`decode_qkd_action` (budgets outside [tau 1e-6, tau] are clipped)."""
    b = np.asarray(budget_s, dtype=np.float64) / slot_s
    return np.clip(1.0 + 2.0 * np.log10(np.maximum(b, 1e-300)) / QKD_DECADES, -1.0, 1.0)


def photons_for_budget(budget_s: ArrayLike, distance_m: ArrayLike, photons_m: float,
                       light_speed_mps: float) -> NDArray[np.float64]:
    """The most entangled pairs that fit a time budget, N = floor(budget c / d), but at least 8 m
    (N = 8 m is eps = 1, the shortest QKD phase eq. (7) allows)."""
    n = np.floor(np.asarray(budget_s, dtype=np.float64) * light_speed_mps / np.asarray(distance_m, dtype=np.float64))
    return np.maximum(n, 8.0 * photons_m)


def budget_for_photons(photons: ArrayLike, distance_m: ArrayLike, light_speed_mps: float) -> NDArray[np.float64]:
    """A QKD time budget whose :func:`photons_for_budget` is exactly ``photons`` (N >= 8 m):
    (N + 1/2) d / c, half a photon's flight above N so that the floor cannot round down."""
    return np.asarray(distance_m, dtype=np.float64) / light_speed_mps * (np.asarray(photons, dtype=np.float64) + 0.5)


def qkd_phase(photons: ArrayLike, distance_m: ArrayLike, photons_m: float, light_speed_mps: float,
              alpha_beta: float, whole: bool | None = None) -> dict[str, NDArray[np.float64]]:
    """eps (the smallest with that photon count, eq. (7)), QKD time (eq. (8)) and error rate (eq. (4)).

    For whole photon counts N (every caller but the baselines' continuous line search), eq. (8)'s
    ceil(8 m / eps^2) at eps = sqrt(8 m / N) is N itself (the round trip tests/test_physics_yang2019
    checks for every N), so the time is d / c * N without computing the count again; the same
    value :func:`~secure_env.core.qkd.qkd_time` gives. ``whole=True`` says the counts are whole
    (a caller that floored them), None checks."""
    eps = basis_prob_for_photons(photons, photons_m)
    n = np.asarray(photons, dtype=np.float64)
    if whole or (whole is None and (n == np.floor(n)).all()):
        t = np.asarray(distance_m, dtype=np.float64) / light_speed_mps * n
    else:
        t = qkd_time(eps, distance_m, photons_m, light_speed_mps)
    return {"basis_prob": eps, "qkd_time_s": t, "key_error_rate": error_rate(eps, alpha_beta)}


def secure_slot(bits_per_user: ArrayLike, key_error_rate: ArrayLike, qkd_time_s: ArrayLike, slot_s: float,
                transmit_w: Any, fixed_w: Any, qkd_source_w: float) -> dict[str, Any]:
    """Secure bits and energy of a slot whose data period is shortened by the QKD phase.

    ``bits_per_user`` are the bits a whole slot of data would carry (tau times the OFDMA rate);
    the data period is tau - sum t_k (no data if negative: flagged by ``overrun_s`` > 0). Secure
    bits of user k: (1 - e_k) * data time * rate_k. Energy: tau (P_C + P_fly) + data time * P_tx +
    sum_k t_k * P_QKD (``fixed_w`` = P_C + P_fly).
    """
    t = np.asarray(qkd_time_s, dtype=np.float64)
    total_qkd = float(t.sum()) if t.ndim == 1 else t.sum(axis=-1)
    data = slot_s - total_qkd
    overrun = np.maximum(-data, 0.0) if isinstance(data, np.ndarray) else max(-data, 0.0)
    data = np.maximum(data, 0.0) if isinstance(data, np.ndarray) else max(data, 0.0)
    frac = data / slot_s
    secure = (1.0 - np.asarray(key_error_rate, dtype=np.float64)) * np.asarray(bits_per_user) * (
        frac[..., None] if isinstance(frac, np.ndarray) else frac)
    energy = slot_s * fixed_w + data * transmit_w + total_qkd * qkd_source_w
    return {"secure_bits_per_user": secure, "data_time_s": data, "overrun_s": overrun, "energy_j": energy}


def user_distances(qx: float, qy: float, user_xy: NDArray[np.float64], altitude_m: float) -> NDArray[np.float64]:
    """3-D UAV-user distances d_k = sqrt(H^2 + ||q - w_k||^2)."""
    from secure_env.core.ofdma import squared_distance_xy

    return np.sqrt(squared_distance_xy(user_xy[..., 0] - qx, user_xy[..., 1] - qy, altitude_m))


def play_qkd_slot(scenario: Any, constants: Any, budget_s: NDArray[np.float64] | None, qx: Any, qy: Any,
                  user_xy: NDArray[np.float64], out: dict[str, Any],
                  phase: dict[str, NDArray[np.float64]] | None = None) -> dict[str, Any]:
    """The QKD stage of a slot the UAV env has just played (``out`` from
    :func:`secure_env.core.uav_ofdma.slot_outcome_xy`), for one env (floats) or a batch, with the
    per-user QKD time budgets the action decoding gave (:func:`decode_qkd_action` or the rule;
    ignored when QKD is off).

    ``phase``: the :func:`qkd_phase` of these budgets at (qx, qy) where the action decoding has it
    (:func:`budget_phase`), so it is not computed twice.

    Returns ``secure_bits_per_user``, ``secure_bits``, ``energy_j``, ``cost`` (overrun / tau),
    ``key_error_bits`` (sum_k e_k bits_k) and ``info`` (the per-step info keys of QuantumUav-v0).
    """
    s, c = scenario, constants
    shape = np.shape(out["bits_per_user"])
    if s.qkd_enabled:
        ph = phase if phase is not None else budget_phase(s, c, budget_s, qx, qy, user_xy)[0]
    else:
        ph = {"basis_prob": np.ones(shape), "qkd_time_s": np.zeros(shape), "key_error_rate": np.zeros(shape)}
    sec = secure_slot(out["bits_per_user"], ph["key_error_rate"], ph["qkd_time_s"], c.slot_s,
                      out["transmit_power_w"], c.circuit_power_w + out["flight_power_w"], s.qkd_source_power_w)
    secure_user = sec["secure_bits_per_user"]
    one = secure_user.ndim == 1
    secure = np.add.reduce(secure_user, axis=-1)           # ndarray.sum's reduction, without its wrapper
    secure = float(secure) if one else secure
    cost = sec["overrun_s"] / c.slot_s
    err_bits = np.add.reduce(ph["key_error_rate"] * out["bits_per_user"], axis=-1)
    return {"secure_bits_per_user": secure_user, "secure_bits": secure, "energy_j": sec["energy_j"],
            "cost": cost, "key_error_bits": float(err_bits) if one else err_bits,
            "info": {"qkd_time_s": ph["qkd_time_s"], "basis_prob": ph["basis_prob"],
                     "key_error_rate": ph["key_error_rate"], "data_time_s": sec["data_time_s"],
                     "secure_bits": secure, "secure_bits_per_user": secure_user,
                     "qkd_overrun_s": sec["overrun_s"], "cost_qkd": cost}}


def _distances_at(qx: Any, qy: Any, user_xy: NDArray[np.float64], altitude_m: float) -> NDArray[np.float64]:
    """:func:`user_distances` from a UAV position given as floats (one env, (K,)) or (B,) arrays
    with users (B, K, 2) (a batch, (B, K))."""
    if np.ndim(qx) > 0:
        return user_distances(np.asarray(qx)[..., None], np.asarray(qy)[..., None], user_xy, altitude_m)
    return user_distances(qx, qy, user_xy, altitude_m)


#: log-spaced photon counts the velocity mode's rule compares per user
RULE_GRID = 64
_RULE_T = np.linspace(0.0, 1.0, RULE_GRID)


def rule_phase(scenario: Any, constants: Any, qx: Any, qy: Any, user_xy: NDArray[np.float64],
               dist: NDArray[np.float64] | None = None
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """:func:`rule_photons` plus the :func:`qkd_phase` of the chosen counts (the grid's own values
    at the chosen points, so equal to ``qkd_phase(photons, dist, ...)``). ``dist``: the users' 3-D
    distances at (qx, qy) where the caller has them (:func:`user_distances`' values)."""
    s, c = scenario, constants
    batch = np.ndim(qx) > 0
    if dist is None:
        dist = _distances_at(qx, qy, user_xy, c.altitude_m)
    lo = 8.0 * s.photons_m
    hi = np.maximum(c.slot_s * s.light_speed_mps / dist, lo * 1.0000001)
    log_lo = _log_lo(lo)
    # floor(exp(log lo + t (log hi - log lo))) at least lo, in place on one (..., K, G) array
    span = np.log(hi)
    span -= log_lo
    grid = span[..., None] * _RULE_T
    grid += log_lo
    np.exp(grid, out=grid)
    np.floor(grid, out=grid)
    np.maximum(grid, lo, out=grid)
    ph = qkd_phase(grid, dist[..., None], s.photons_m, s.light_speed_mps, s.alpha_beta, whole=True)
    value = c.slot_s - ph["qkd_time_s"]                 # (tau - t)^+ (1 - e)
    np.maximum(value, 0.0, out=value)
    value *= 1.0 - ph["key_error_rate"]
    best = np.argmax(value, axis=-1)
    if not batch:   # (K, G): plain indexing, the same elements as take_along_axis below
        pick = (np.arange(grid.shape[0]), best)
        return grid[pick], dist, {key: v[pick] for key, v in ph.items()}
    best = best[..., None]
    photons = np.take_along_axis(grid, best, axis=-1)[..., 0]
    return photons, dist, {key: np.take_along_axis(v, best, axis=-1)[..., 0] for key, v in ph.items()}


@functools.lru_cache(maxsize=8)
def _log_lo(lo: float) -> Any:
    """np.log of the rule grid's lowest count 8 m (a scenario constant), computed once per value."""
    return np.log(lo)


def rule_photons(scenario: Any, constants: Any, qx: Any, qy: Any, user_xy: NDArray[np.float64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The velocity mode's QKD rule: for every user, the photon count N (of :data:`RULE_GRID`
    log-spaced counts from 8 m to the slot's worth, floored) maximising its secure share of a slot
    it is served in, (tau - t(N)) (1 - e(N)) with t = N d / c (eq. (8)) and e = e(sqrt(8 m / N))
    (eq. (4)). Other users' QKD phases are neglected (a few ms against tau). Returns (photons,
    3-D distances), both (..., K).
    """
    photons, dist, _ = rule_phase(scenario, constants, qx, qy, user_xy)
    return photons, dist


def budget_phase(scenario: Any, constants: Any, budget_s: NDArray[np.float64], qx: Any, qy: Any,
                 user_xy: NDArray[np.float64], dist: NDArray[np.float64] | None = None
                 ) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.float64]]:
    """(:func:`qkd_phase`, 3-D distances) of QKD time budgets (..., K) spent at (qx, qy): the
    photon counts that fit them (:func:`photons_for_budget`). ``dist``: the distances at (qx, qy)
    where the caller has them."""
    s, c = scenario, constants
    if dist is None:
        dist = _distances_at(qx, qy, user_xy, c.altitude_m)
    photons = photons_for_budget(budget_s, dist, s.photons_m, s.light_speed_mps)     # floored: whole
    return qkd_phase(photons, dist, s.photons_m, s.light_speed_mps, s.alpha_beta, whole=True), dist


def secure_fraction(scenario: Any, constants: Any, budget_s: NDArray[np.float64], qx: Any, qy: Any,
                    user_xy: NDArray[np.float64], phase: dict[str, NDArray[np.float64]] | None = None
                    ) -> NDArray[np.float64]:
    """(1 - e_k) (tau - sum_j t_j)^+ / tau per user (..., K): the share of a whole slot's data
    bits to user k that stays secure with these QKD budgets (the R_min pace guard's factor).
    ``phase``: the :func:`qkd_phase` of these budgets where the caller has it (:func:`budget_phase`,
    or :func:`rule_phase` for budgets from :func:`budget_for_photons` of the rule's counts)."""
    s, c = scenario, constants
    if phase is None:
        phase = budget_phase(s, c, budget_s, qx, qy, user_xy)[0]
    t = phase["qkd_time_s"]
    if t.ndim == 1:              # one env: the data share as a float (the same sum and quotient)
        rest = c.slot_s - float(t.sum())
        data: Any = (rest if rest > 0.0 else 0.0) / c.slot_s
    else:
        data = np.maximum(c.slot_s - t.sum(axis=-1, keepdims=True), 0.0) / c.slot_s
    return (1.0 - phase["key_error_rate"]) * data


__all__ = ["budget_for_photons", "budget_phase", "rule_phase", "rule_photons", "secure_fraction", "play_qkd_slot", "QKD_DECADES", "decode_qkd_action", "encode_qkd_action", "photons_for_budget", "qkd_phase",
           "secure_slot", "user_distances"]
