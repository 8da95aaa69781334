"""The TDMA benchmark of Yang et al. 2019 (stage 2 by TDMA), solved exactly."""
from __future__ import annotations

from typing import Any

import numpy as np

from secure_env.core.qkd import error_rate

from baselines.yang2019.algorithm1 import Plan
from baselines.yang2019.theorems import BISECTION_STEPS, Array, _min_secure_rate, snap_to_photon_count


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
