"""Safety layer of the UAV envs: keep q_F reachable and the leakage under its cap, in closed form.

**Reachability.** After a slot flown with velocity v from q, with m slots left, the mission can
still end exactly at q_F if some admissible velocity sequence v_1..v_m (||v_i|| <= V,
||v_i - v_{i-1}|| <= dv, v_0 = v) covers D = q_F - q - tau v. We use the family of *ramp-then-
cruise* sequences: ramp linearly from v to a cruise velocity u in k slots (v_i = v + i (u - v) / k),
then cruise at u. It covers tau (h v + (m - h) u) with h = (k - 1) / 2, so u is fixed by k:

    u_k(v) = (G - (1 + h) v) / (m - h),   G = (q_F - q) / tau,

and the sequence is admissible iff ||u_k|| <= V and ||u_k - v|| <= k dv (the ramp's steps then
stay inside both discs by convexity). The set of such states is an inner approximation of the
exact reachable set (which needs a convex program per step), and it is *invariant*: if the
state before a slot is reachable with some (k0, u0), the ramp's first step
v_home = v_prev + (u0 - v_prev) / k0 leaves a state reachable with (k0 - 1, u0). So

    v = v_c + lambda (v_home - v_c),   lambda in [0, 1] the smallest that keeps the state reachable,

is always defined (lambda = 1 works), is admissible (v_c and v_home lie in the speed and
acceleration discs, and so does every blend), and keeps q_F reachable to the last slot, where it
is q_F - q over tau. For a fixed k both conditions are discs in v, hence quadratic inequalities
in lambda: lambda* is the smallest lower end of the k intervals, computed for all k at once.
A cheap test of the command alone (one k) decides most steps without that computation.

**Leakage.** Per-subcarrier power is capped at gamma_tol d_E,min^2 / gamma0 at the serving
position (:func:`secure_env.core.secrecy.leakage_power_cap`), which is C7 exactly.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: relative margin: blends aim inside the limits by this much, homing accepts states outside by it
REACH_RTOL = 1e-9


def _full_change_slots(v_max: float, dv_max: float) -> int:
    """Slots a ramp needs to reach any velocity from any other: ceil(2 V / dv)."""
    return max(1, math.ceil(2.0 * v_max / dv_max))


def command_reachable(gx: Any, gy: Any, vx: Any, vy: Any, slots_left: Any, v_max: float,
                      dv_max: float) -> Any:
    """Cheap sufficient test: is q_F reachable after flying (vx, vy) this slot, by the ramp of
    k = min(m, ceil(2V/dv)) slots? ``(gx, gy)`` = (q_F - q) / tau before the slot, ``slots_left``
    = m after it. Floats (one env) or arrays (a batch). False where m = 0 unless v = G exactly.
    """
    kf = _full_change_slots(v_max, dv_max)
    m = slots_left
    if isinstance(m, (int, np.integer)):
        if m <= 0:
            return gx == vx and gy == vy
        k = m if m < kf else kf
    else:
        k = np.minimum(np.maximum(m, 1), kf)
    h = 0.5 * (k - 1)
    den = m - h if isinstance(m, (int, np.integer)) else np.where(np.asarray(m) > 0, m - h, 1.0)
    ux, uy = (gx - (1.0 + h) * vx) / den, (gy - (1.0 + h) * vy) / den
    tight = 1.0 - REACH_RTOL
    ok_u = ux * ux + uy * uy <= (v_max * tight) ** 2
    rx, ry = ux - vx, uy - vy
    ok_r = rx * rx + ry * ry <= (k * dv_max * tight) ** 2
    ok = ok_u & ok_r
    if not isinstance(m, (int, np.integer)):
        ok = ok & (np.asarray(m) > 0)
    return ok


def homing_velocity(gx: NDArray[np.float64], gy: NDArray[np.float64], pvx: NDArray[np.float64],
                    pvy: NDArray[np.float64], has_prev: NDArray[np.bool_], slots_left: NDArray[np.int64],
                    v_max: float, dv_max: float, k_max: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The first step of a ramp-then-cruise sequence from the state before the slot (arrays (B,)).

    ``slots_left`` = M counts this slot. Without a previous velocity: the straight line G / M.
    Otherwise the smallest k0 in 1..M whose (k0, u0) is admissible (within :data:`REACH_RTOL`;
    if none, numerically, the least violating one), and v_prev + (u0 - v_prev) / k0.
    """
    big_m = np.maximum(slots_left, 1).astype(np.float64)
    k = np.arange(1, k_max + 1, dtype=np.float64)[None, :]                 # (1, K)
    h = 0.5 * (k - 1.0)
    den = np.where(k <= big_m[:, None], big_m[:, None] - h, 1.0)
    ux = (gx[:, None] - h * pvx[:, None]) / den
    uy = (gy[:, None] - h * pvy[:, None]) / den
    over_u = np.sqrt(ux * ux + uy * uy) / v_max - 1.0
    over_r = np.sqrt((ux - pvx[:, None]) ** 2 + (uy - pvy[:, None]) ** 2) / (k * dv_max) - 1.0
    worst = np.maximum(over_u, over_r)
    worst = np.where(k <= big_m[:, None], worst, np.inf)
    ok = worst <= REACH_RTOL
    first_ok = np.argmax(ok, axis=1)
    pick = np.where(ok.any(axis=1), first_ok, np.argmin(worst, axis=1))
    rows = np.arange(len(gx))
    k0 = k[0, pick]
    hx = pvx + (ux[rows, pick] - pvx) / k0
    hy = pvy + (uy[rows, pick] - pvy) / k0
    hx = np.where(has_prev, hx, gx / big_m)
    hy = np.where(has_prev, hy, gy / big_m)
    return hx, hy


def _interval(bx: NDArray[np.float64], by: NDArray[np.float64], dx: NDArray[np.float64],
              dy: NDArray[np.float64], r: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """{lambda : ||b + lambda d|| <= r} as [lo, hi] (lo > hi when empty)."""
    a = dx * dx + dy * dy
    b = bx * dx + by * dy
    c0 = bx * bx + by * by - r * r
    flat = a <= 1e-300
    disc = b * b - a * c0
    root = np.sqrt(np.maximum(disc, 0.0))
    safe_a = np.where(flat, 1.0, a)
    lo = np.where(flat, np.where(c0 <= 0.0, -np.inf, np.inf), (-b - root) / safe_a)
    hi = np.where(flat, np.where(c0 <= 0.0, np.inf, -np.inf), (-b + root) / safe_a)
    empty = ~flat & (disc < 0.0)
    return np.where(empty, np.inf, lo), np.where(empty, -np.inf, hi)


def reach_blend(gx: NDArray[np.float64], gy: NDArray[np.float64], cx: NDArray[np.float64],
                cy: NDArray[np.float64], hx: NDArray[np.float64], hy: NDArray[np.float64],
                slots_left: NDArray[np.int64], v_max: float, dv_max: float, k_max: int) -> NDArray[np.float64]:
    """Smallest lambda in [0, 1] with v = c + lambda (h - c) reachable (arrays (B,); m = slots
    left after the slot). 1 where m = 0 or where no k admits any lambda (numerically)."""
    m = slots_left.astype(np.float64)[:, None]
    k = np.arange(1, k_max + 1, dtype=np.float64)[None, :]
    h = 0.5 * (k - 1.0)
    valid_k = k <= m
    den = np.where(valid_k, m - h, 1.0)
    ddx, ddy = (hx - cx)[:, None], (hy - cy)[:, None]
    ucx = (gx[:, None] - (1.0 + h) * cx[:, None]) / den
    ucy = (gy[:, None] - (1.0 + h) * cy[:, None]) / den
    dux, duy = -(1.0 + h) * ddx / den, -(1.0 + h) * ddy / den
    tight = 1.0 - REACH_RTOL
    lo1, hi1 = _interval(ucx, ucy, dux, duy, v_max * tight)
    lo2, hi2 = _interval(ucx - cx[:, None], ucy - cy[:, None], dux - ddx, duy - ddy, k * dv_max * tight)
    lo = np.maximum(np.maximum(lo1, lo2), 0.0)
    hi = np.minimum(np.minimum(hi1, hi2), 1.0)
    good = valid_k & (lo <= hi)
    lam = np.min(np.where(good, lo, np.inf), axis=1)
    return np.where(np.isfinite(lam), lam, 1.0)


def safe_velocity(qx: Any, qy: Any, pvx: Any, pvy: Any, has_prev: Any, cx: Any, cy: Any, slots_left: Any,
                  end_xy: tuple[float, float], slot_s: float, v_max: float, dv_max: float, num_slots: int
                  ) -> tuple[Any, Any, Any]:
    """The safety layer's velocity: (v_x, v_y, lambda) for the command (cx, cy) already projected
    onto the speed and acceleration discs; ``slots_left`` = m after this slot. Floats in (one env)
    give floats out; arrays (B,) give arrays. lambda = 0: the command is kept."""
    gx, gy = (end_xy[0] - qx) / slot_s, (end_xy[1] - qy) / slot_s
    single = not isinstance(qx, np.ndarray)
    ok = command_reachable(gx, gy, cx, cy, slots_left, v_max, dv_max)
    if single:
        if ok:
            return cx, cy, 0.0
        arr = [np.array([x], dtype=np.float64) for x in (gx, gy, pvx, pvy, cx, cy)]
        hp, m = np.array([bool(has_prev)]), np.array([int(slots_left)])
    else:
        if ok.all():
            return cx, cy, np.zeros(np.shape(qx))
        idx = np.flatnonzero(~ok)
        arr = [np.asarray(x, dtype=np.float64)[idx] for x in (gx, gy, pvx, pvy, cx, cy)]
        hp, m = np.asarray(has_prev, dtype=bool)[idx], np.asarray(slots_left)[idx]
    sgx, sgy, spx, spy, scx, scy = arr
    hx, hy = homing_velocity(sgx, sgy, spx, spy, hp, m + 1, v_max, dv_max, num_slots)
    lam = reach_blend(sgx, sgy, scx, scy, hx, hy, m, v_max, dv_max, num_slots)
    lam = np.where(m <= 0, 1.0, lam)
    vx, vy = scx + lam * (hx - scx), scy + lam * (hy - scy)
    vx, vy = np.where(lam >= 1.0, hx, vx), np.where(lam >= 1.0, hy, vy)
    if single:
        return float(vx[0]), float(vy[0]), float(lam[0])
    out_x, out_y = np.array(cx, dtype=np.float64, copy=True), np.array(cy, dtype=np.float64, copy=True)
    lam_all = np.zeros(np.shape(qx))
    out_x[idx], out_y[idx], lam_all[idx] = vx, vy, lam
    return out_x, out_y, lam_all


__all__ = ["REACH_RTOL", "command_reachable", "homing_velocity", "reach_blend", "safe_velocity"]
