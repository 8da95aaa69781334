"""Independent convex reference for the relaxed OFDMA energy-efficiency problem (fixed trajectory).

Helper imported by tests (it holds no tests itself).  With ``x[n,k]`` in [0, 1] the fraction of
slot n's ``nf`` identical subcarriers given to user k and ``y[n,k] >= 0`` equal to ``x[n,k]`` times
that user's per-subcarrier power (W), the problem is

    rate[n,k] = nf * w_hz * x * log2(1 + g * y / x)          (perspective of log; 0 at x = 0)
    maximise  EE = sum_{n,k} rate[n,k] / sum_n (nf * sum_k y[n,k] + p_c + p_fly[n])   [bit/J]
    s.t.      sum_k x[n,k] <= 1,   nf * sum_k y[n,k] <= p_avail[n],   y[n,k] <= cap[n] * x[n,k],
              sum_n rate[n,k] >= N * r_min_bps   for every user k.

The perspective is written as ``x * log(1 + a*u/x) = -rel_entr(x, x + a*u)`` (an exponential cone),
solved with CVXPY + Clarabel.  The fractional objective is handled either by

* ``method="charnes-cooper"`` (default): the numerator is positively homogeneous, so with
  ``t > 0``, ``X = t x``, ``U = t u`` and the normalised denominator fixed to N, the problem is a
  single concave program (``iterations`` = 1);
* ``method="dinkelbach"``: eta_0 = 0, maximise ``rate - eta * power``, eta <- rate/power, stop when
  the optimal value <= tol * eta * power (a relative EE gap) or eta stops increasing,
  ``iterations`` = number of solves (typically 2-7); ``tol`` is used only here.  The two methods
  agree to ~3e-8 relative in EE (randomised N <= 50, K <= 4); constraints hold to ~1e-8.

Internal units: rates in nats (times r0 = nf * w_hz / ln 2 gives bit/s), the power variable
``u = nf * y / Pa`` with ``Pa = max(p_avail)``, and the denominator in units of
``P0 = mean(p_c + p_fly + p_avail)``; all are O(1) for the Cai-2019 magnitudes.  The cap row is
written ``u * Pa / (nf * cap) <= x`` so an infinite/huge cap is exactly a zero coefficient, and slots
with ``p_avail == 0`` or ``cap == 0`` are fixed at x = y = 0 (they carry no rate) instead of being
handed to the solver as degenerate cones.
"""
from __future__ import annotations

import math
import warnings

import cvxpy as cp
import numpy as np

_CLARABEL = dict(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-8,
                 tol_ktratio=1e-8, max_iter=500)
# Clarabel occasionally stalls (InsufficientProgress) on exp cones whose x-corner sits at 0 (users
# not served in a slot); shorter steps or no equilibration fix it, so solves retry with these.
_RETRIES = ({"max_step_fraction": 0.9}, {"max_step_fraction": 0.8}, {"equilibrate_enable": False},
            {"max_step_fraction": 0.99})


def _rates_nats(x: np.ndarray, a: np.ndarray, u: np.ndarray) -> np.ndarray:
    """x * ln(1 + a u / x), 0 where x == 0 (numpy, elementwise)."""
    x = np.clip(x, 0.0, None)
    u = np.clip(u, 0.0, None)
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, x * np.log1p(a * u / safe), 0.0)


def relaxed_ee_cvxpy(g, cap, p_avail, p_fly, p_c, w_hz, nf, r_min_bps, tol=1e-9,
                     method: str = "charnes-cooper") -> dict:
    """Globally solve the relaxed EE problem of the module docstring.

    Returns ``{"ee": bit/J, "x": (N,K), "y": (N,K) W, "rate_bps": (K,) mission-average rate per user,
    "iterations": int}``; ``ee`` and ``rate_bps`` are re-evaluated in numpy from the returned
    ``x, y``.  Raises ``ValueError`` if the problem is infeasible (or the solver fails).
    """
    g = np.asarray(g, dtype=np.float64)
    n_slots, n_users = g.shape
    cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n_slots,))
    p_avail = np.broadcast_to(np.asarray(p_avail, dtype=np.float64), (n_slots,))
    p_fly = np.broadcast_to(np.asarray(p_fly, dtype=np.float64), (n_slots,))
    nf = int(nf)
    pa = max(float(p_avail.max()), 1e-300)
    p0 = max(float(np.mean(p_c + p_fly + p_avail)), 1e-300)
    r0 = nf * w_hz / math.log(2.0)                                  # bit/s per nat
    a_full = g * pa / nf                                            # SNR per unit of u
    base = float(np.sum(p_c + p_fly)) / p0                          # fixed power, P0 units
    rmin_nats = n_slots * r_min_bps / r0
    act = np.flatnonzero((p_avail > 0) & (cap > 0) & (g.max(axis=1) > 0))  # others carry no rate
    xv, uv, iters = np.zeros((n_slots, n_users)), np.zeros((n_slots, n_users)), 0
    if act.size == 0:
        if r_min_bps > 0:
            raise ValueError("relaxed EE problem infeasible: no slot can carry rate")
        return _pack(xv, uv, a_full, pa, nf, r0, n_slots, p_c, p_fly, iters)
    a, budget = a_full[act], p_avail[act] / pa
    inv_cap = pa / (nf * cap[act])                                  # y <= cap x  <=>  inv_cap*u <= x
    fin = np.flatnonzero(inv_cap > 0)

    x = cp.Variable((act.size, n_users), nonneg=True)
    u = cp.Variable((act.size, n_users), nonneg=True)
    rate = -cp.rel_entr(x, x + cp.multiply(cp.Constant(a), u))      # x ln(1 + a u / x)

    def cap_rows():
        return [cp.multiply(inv_cap[fin][:, None], u[fin]) <= x[fin]] if fin.size else []

    def solve(prob):
        status = "solver failure"
        for extra in _RETRIES:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)   # 'inaccurate': checked below
                    prob.solve(**_CLARABEL, **extra)
            except cp.error.SolverError:
                continue
            status = prob.status
            if status in (cp.OPTIMAL, cp.INFEASIBLE):
                break
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise ValueError(f"relaxed EE problem not solved: status {status}")

    if method == "charnes-cooper":
        t = cp.Variable(nonneg=True)
        cons = [cp.sum(x, axis=1) <= t, cp.sum(u, axis=1) <= t * budget, *cap_rows(),
                cp.sum(rate, axis=0) >= t * rmin_nats,
                cp.sum(u) * (pa / p0) + t * base == n_slots]
        prob = cp.Problem(cp.Maximize(cp.sum(rate)), cons)
        solve(prob)
        tv = float(t.value)
        if not tv > 0:
            raise ValueError("Charnes-Cooper scaling t <= 0")
        xa, ua, iters = x.value / tv, u.value / tv, 1
    elif method == "dinkelbach":
        eta = cp.Parameter(nonneg=True)
        power = cp.sum(u) * (pa / p0) + base
        cons = [cp.sum(x, axis=1) <= 1, cp.sum(u, axis=1) <= budget, *cap_rows(),
                cp.sum(rate, axis=0) >= rmin_nats]
        prob = cp.Problem(cp.Maximize(cp.sum(rate) - eta * power), cons)
        eta.value = 0.0
        while True:
            solve(prob)
            iters += 1
            xa, ua = x.value, u.value
            num = float(_rates_nats(xa, a, ua).sum())
            den = float(ua.sum() * pa / p0 + base)
            new_eta = num / den
            # converged, or the solver's accuracy no longer lets eta increase
            if (prob.value <= tol * max(eta.value, 1e-300) * den or new_eta <= eta.value * (1 + tol)
                    or iters >= 50):
                break
            eta.value = new_eta
    else:
        raise ValueError(f"unknown method {method!r}")
    xv[act], uv[act] = xa, ua
    return _pack(xv, uv, a_full, pa, nf, r0, n_slots, p_c, p_fly, iters)


def _pack(xv, uv, a, pa, nf, r0, n_slots, p_c, p_fly, iters) -> dict:
    xv = np.clip(xv, 0.0, 1.0)
    uv = np.clip(uv, 0.0, None)
    y = uv * pa / nf
    rate_bps = r0 * _rates_nats(xv, a, uv)                          # (N, K) bit/s
    total_power = nf * y.sum() + n_slots * p_c + p_fly.sum()
    return {"ee": float(rate_bps.sum() / total_power) if total_power > 0 else 0.0, "x": xv, "y": y,
            "rate_bps": rate_bps.sum(axis=0) / n_slots, "iterations": iters}
