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

#: relative margin: blends aim inside the limits by this much, homing accepts states outside by it
REACH_RTOL = 1e-9


def _full_change_slots(v_max: float, dv_max: float) -> int:
    """Slots a ramp needs to reach any velocity from any other: ceil(2 V / dv). The family is
    limited to ramps of at most this many slots (longer ones add little), which keeps the
    invariance argument intact and every step to a handful of candidates."""
    return max(1, math.ceil(2.0 * v_max / dv_max))


def _last_ramp(kf: int, slots: Any) -> int:
    """The longest ramp a batch can use: min(kf, max slots); longer ones are inactive for every env
    (the single env's loops stop there too), and kf = ceil(2V/dv) can be in the thousands."""
    return int(min(kf, max(int(np.max(slots)), 0))) if np.size(slots) else 0


# generic helpers: Python floats (one env, fast) or numpy arrays (a batch), same operations
def _is_arr(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def _sel(cond: Any, a: Any, b: Any) -> Any:
    return np.where(cond, a, b) if _is_arr(cond) else (a if cond else b)


def _cruise(gx: Any, gy: Any, px: Any, py: Any, slots: Any, k: int) -> tuple[Any, Any]:
    """Cruise velocity u of the ramp of k slots from velocity p that covers G (in units of tau)
    in ``slots`` slots: (G - h p) / (slots - h), h = (k - 1) / 2. Needs slots >= k."""
    h = 0.5 * (k - 1)
    den = slots - h
    if _is_arr(den):
        den = np.where(den > 0.0, den, 1.0)
    return (gx - h * px) / den, (gy - h * py) / den


def command_reachable(gx: Any, gy: Any, vx: Any, vy: Any, slots_left: Any, v_max: float,
                      dv_max: float) -> Any:
    """Cheap sufficient test: is q_F reachable after flying (vx, vy) this slot, by the ramp of
    k = min(m, ceil(2V/dv)) slots? ``(gx, gy)`` = (q_F - q) / tau before the slot, ``slots_left``
    = m after it. Floats (one env) or arrays (a batch). False where m = 0 unless v = G exactly.
    """
    kf = _full_change_slots(v_max, dv_max)
    m = slots_left
    if not _is_arr(m):
        return _reachable_one(gx, gy, vx, vy, m, v_max, dv_max, kf)
    ok = np.zeros(np.shape(m), dtype=bool)
    for k in range(1, _last_ramp(kf, m) + 1):   # k = min(m, kf) for every env of the batch
        pick = (m == k) if k < kf else (m >= kf)
        ok |= pick & _admissible(gx - vx, gy - vy, vx, vy, m, k, v_max, dv_max, 1.0 - REACH_RTOL)
    return ok


def _admissible(gx: Any, gy: Any, px: Any, py: Any, slots: Any, k: int, v_max: float, dv_max: float,
                scale: float) -> Any:
    """Is the ramp of k slots from p covering G in ``slots`` slots admissible (limits times scale)?"""
    ux, uy = _cruise(gx, gy, px, py, slots, k)
    rx, ry = ux - px, uy - py
    return (ux * ux + uy * uy <= (v_max * scale) ** 2) & (rx * rx + ry * ry <= (k * dv_max * scale) ** 2)


def homing_velocity(gx: Any, gy: Any, pvx: Any, pvy: Any, has_prev: Any, slots_left: Any,
                    v_max: float, dv_max: float) -> tuple[Any, Any]:
    """The first step of a ramp-then-cruise sequence from the state before the slot.

    ``slots_left`` = M counts this slot. Without a previous velocity: the straight line G / M.
    Otherwise the shortest ramp k0 <= min(M, ceil(2V/dv)) whose (k0, u0) is admissible (within
    :data:`REACH_RTOL`; if none, numerically, the least violating one), and v_prev + (u0 - v_prev) / k0.
    """
    kf = _full_change_slots(v_max, dv_max)
    if not _is_arr(gx):
        return _homing_one(gx, gy, pvx, pvy, has_prev, slots_left, v_max, dv_max, kf)
    big_m = np.maximum(slots_left, 1)
    best_x, best_y, best_w = np.zeros(np.shape(gx)), np.zeros(np.shape(gx)), np.full(np.shape(gx), np.inf)
    found = np.zeros(np.shape(gx), dtype=bool)
    for k in range(1, _last_ramp(kf, big_m) + 1):
        active = big_m >= k
        ux, uy = _cruise(gx, gy, pvx, pvy, big_m, k)
        rx, ry = ux - pvx, uy - pvy
        worst = (ux * ux + uy * uy) ** 0.5 / v_max - 1.0
        worst_r = (rx * rx + ry * ry) ** 0.5 / (k * dv_max) - 1.0
        worst = np.where(active, np.maximum(worst, worst_r), np.inf)
        take = ~found & ((worst <= REACH_RTOL) | (worst < best_w))
        best_x = np.where(take, pvx + rx / k, best_x)
        best_y = np.where(take, pvy + ry / k, best_y)
        best_w = np.where(take, worst, best_w)
        found |= worst <= REACH_RTOL
        if found.all():
            break
    return _sel(has_prev, best_x, gx / big_m), _sel(has_prev, best_y, gy / big_m)


def _interval(bx: Any, by: Any, dx: Any, dy: Any, r: float) -> tuple[Any, Any]:
    """{lambda : ||b + lambda d|| <= r} as [lo, hi] (lo > hi when empty); floats or arrays."""
    a = dx * dx + dy * dy
    b = bx * dx + by * dy
    c0 = bx * bx + by * by - r * r
    disc = b * b - a * c0
    if not _is_arr(a):
        if a <= 1e-300:
            return (-math.inf, math.inf) if c0 <= 0.0 else (math.inf, -math.inf)
        if disc < 0.0:
            return math.inf, -math.inf
        root = math.sqrt(disc)
        return (-b - root) / a, (-b + root) / a
    flat = a <= 1e-300
    root = np.sqrt(np.maximum(disc, 0.0))
    safe_a = np.where(flat, 1.0, a)
    lo = np.where(flat, np.where(c0 <= 0.0, -np.inf, np.inf), (-b - root) / safe_a)
    hi = np.where(flat, np.where(c0 <= 0.0, np.inf, -np.inf), (-b + root) / safe_a)
    empty = ~flat & (disc < 0.0)
    return np.where(empty, np.inf, lo), np.where(empty, -np.inf, hi)


def reach_blend(gx: Any, gy: Any, cx: Any, cy: Any, hx: Any, hy: Any, slots_left: Any, v_max: float,
                dv_max: float) -> Any:
    """Smallest lambda in [0, 1] with v = c + lambda (h - c) reachable (m = slots left after the
    slot). 1 where m = 0 or where no k admits any lambda (numerically). Floats or arrays."""
    kf = _full_change_slots(v_max, dv_max)
    m = slots_left
    if not _is_arr(gx):
        return _blend_one(gx, gy, cx, cy, hx, hy, m, v_max, dv_max, kf)
    lam = np.full(np.shape(gx), np.inf)
    ddx, ddy = hx - cx, hy - cy
    tight = 1.0 - REACH_RTOL
    for k in range(1, _last_ramp(kf, m) + 1):
        active = m >= k
        h = 0.5 * (k - 1)
        ucx, ucy = _cruise(gx - cx, gy - cy, cx, cy, m, k)
        den = m - h
        f = -(1.0 + h) / np.where(den > 0.0, den, 1.0)
        dux, duy = f * ddx, f * ddy
        lo1, hi1 = _interval(ucx, ucy, dux, duy, v_max * tight)
        lo2, hi2 = _interval(ucx - cx, ucy - cy, dux - ddx, duy - ddy, k * dv_max * tight)
        lo = np.maximum(np.maximum(lo1, lo2), 0.0)
        hi = np.minimum(np.minimum(hi1, hi2), 1.0)
        lam = np.where(active & (lo <= hi), np.minimum(lam, lo), lam)
    return np.where(np.isfinite(lam) & (m > 0), lam, 1.0)


def safe_velocity(qx: Any, qy: Any, pvx: Any, pvy: Any, has_prev: Any, cx: Any, cy: Any, slots_left: Any,
                  end_xy: tuple[float, float], slot_s: float, v_max: float, dv_max: float
                  ) -> tuple[Any, Any, Any]:
    """The safety layer's velocity: (v_x, v_y, lambda) for the command (cx, cy) already projected
    onto the speed and acceleration discs; ``slots_left`` = m after this slot. Floats in (one env)
    give floats out; arrays (B,) give arrays. lambda = 0: the command is kept."""
    gx, gy = (end_xy[0] - qx) / slot_s, (end_xy[1] - qy) / slot_s
    if not _is_arr(qx):
        return _safe_velocity_one(gx, gy, pvx, pvy, has_prev, cx, cy, slots_left, v_max, dv_max)
    ok = command_reachable(gx, gy, cx, cy, slots_left, v_max, dv_max)
    if ok.all():
        return cx, cy, np.zeros(np.shape(qx))
    idx = np.flatnonzero(~ok)
    sgx, sgy, spx, spy, scx, scy = (np.asarray(x, dtype=np.float64)[idx] for x in (gx, gy, pvx, pvy, cx, cy))
    hp, m = np.asarray(has_prev, dtype=bool)[idx], np.asarray(slots_left)[idx]
    hx, hy = homing_velocity(sgx, sgy, spx, spy, hp, m + 1, v_max, dv_max)
    lam = reach_blend(sgx, sgy, scx, scy, hx, hy, m, v_max, dv_max)
    full = lam >= 1.0
    vx = np.where(full, hx, scx + lam * (hx - scx))
    vy = np.where(full, hy, scy + lam * (hy - scy))
    out_x, out_y = np.array(cx, dtype=np.float64, copy=True), np.array(cy, dtype=np.float64, copy=True)
    lam_all = np.zeros(np.shape(qx))
    out_x[idx], out_y[idx], lam_all[idx] = vx, vy, np.minimum(lam, 1.0)
    return out_x, out_y, lam_all


def _safe_velocity_one(gx: float, gy: float, pvx: float, pvy: float, has_prev: bool, cx: float, cy: float,
                       m: int, v_max: float, dv_max: float) -> tuple[float, float, float]:
    """:func:`safe_velocity` for one env, on floats (tests/test_action_modes.py checks it against
    the batch path bit for bit)."""
    kf = _full_change_slots(v_max, dv_max)
    if _reachable_one(gx, gy, cx, cy, m, v_max, dv_max, kf):
        return cx, cy, 0.0
    hx, hy = _homing_one(gx, gy, pvx, pvy, has_prev, m + 1, v_max, dv_max, kf)
    lam = _blend_one(gx, gy, cx, cy, hx, hy, m, v_max, dv_max, kf)
    if lam >= 1.0:
        return hx, hy, 1.0
    return cx + lam * (hx - cx), cy + lam * (hy - cy), lam


# one env: the same expressions as the batch loops, on floats, with early exits
def _reachable_one(gx: float, gy: float, vx: float, vy: float, m: int, v_max: float, dv_max: float,
                   kf: int) -> bool:
    """:func:`command_reachable` on floats: the ramp of k = min(m, kf) slots from (vx, vy)."""
    if m <= 0:
        return gx == vx and gy == vy
    return _admissible(gx - vx, gy - vy, vx, vy, m, m if m < kf else kf, v_max, dv_max, 1.0 - REACH_RTOL)


def _homing_one(gx: float, gy: float, pvx: float, pvy: float, has_prev: bool, slots_left: int, v_max: float,
                dv_max: float, kf: int) -> tuple[float, float]:
    """:func:`homing_velocity` on floats (``slots_left`` = M counts this slot)."""
    big_m = slots_left if slots_left > 1 else 1
    if not has_prev:
        return gx / big_m, gy / big_m
    best_x = best_y = 0.0
    best_w = math.inf
    for k in range(1, min(kf, big_m) + 1):
        h = 0.5 * (k - 1)
        den = big_m - h
        ux, uy = (gx - h * pvx) / den, (gy - h * pvy) / den
        rx, ry = ux - pvx, uy - pvy
        worst = (ux * ux + uy * uy) ** 0.5 / v_max - 1.0
        worst_r = (rx * rx + ry * ry) ** 0.5 / (k * dv_max) - 1.0
        worst = worst if worst > worst_r else worst_r
        if worst < best_w:
            best_x, best_y, best_w = pvx + rx / k, pvy + ry / k, worst
        if worst <= REACH_RTOL:
            break
    return best_x, best_y


def _blend_one(gx: float, gy: float, cx: float, cy: float, hx: float, hy: float, m: int, v_max: float,
               dv_max: float, kf: int) -> float:
    """:func:`reach_blend` on floats."""
    tight = 1.0 - REACH_RTOL
    lam = math.inf
    ddx, ddy = hx - cx, hy - cy
    gcx, gcy = gx - cx, gy - cy
    for k in range(1, min(kf, m) + 1):
        h = 0.5 * (k - 1)
        den = m - h
        ucx, ucy = (gcx - h * cx) / den, (gcy - h * cy) / den
        f = -(1.0 + h) / den
        dux, duy = f * ddx, f * ddy
        lo, hi = _interval(ucx, ucy, dux, duy, v_max * tight)
        lo2, hi2 = _interval(ucx - cx, ucy - cy, dux - ddx, duy - ddy, k * dv_max * tight)
        lo = max(lo, lo2, 0.0)
        hi = min(hi, hi2, 1.0)
        if lo <= hi and lo < lam:
            lam = lo
    return lam if (lam < math.inf and m > 0) else 1.0


__all__ = ["REACH_RTOL", "command_reachable", "homing_velocity", "reach_blend", "safe_velocity"]
