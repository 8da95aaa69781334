"""One slot of the secure UAV-OFDMA downlink (Cai et al. 2019): kinematics, action codec, outcome.

Pure functions over arrays with any leading batch shape; the single env calls them with no batch
axis, planners with a slot axis, a vector env with an env axis. Everything the env reports (bits,
energy, leakage, costs) comes from :func:`slot_outcome`, so a baseline's own accounting and the
env's agree by construction.

Trajectory indexing (spec §7, recommended form): waypoints q[0..N] with q[0] = q0 and, in slot
n = 1..N, the UAV flies with velocity v[n] from q[n-1] to q[n] = q[n-1] + tau v[n] and
communicates from q[n]; the mission must end at q[N] = qF. The acceleration limit C12 binds
v[n] against v[n-1] for n >= 2; the first slot's velocity is limited by the speed only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core.flight import RotorParams, flight_power
from secure_env.core.ofdma import energy_efficiency, one_plus_snr, rate_of_snr, squared_distance_xy, total_power
from secure_env.core.secrecy import (binding_disc, leakage_power_cap, leakage_snr, sample_in_discs,
                                    worst_case_disc_distance_sq, worst_case_eve_distance_sq_xy)

#: relative slack on the leakage limit before a slot counts as violating it: float32 actions
#: cannot land exactly on the cap (a planner at the cap is off by about 1e-7)
LEAKAGE_RTOL = 1e-5


@dataclass(frozen=True)
class SlotConstants:
    """The scenario's numbers one slot needs, as plain floats (built once per env)."""

    num_users: int
    num_subcarriers: int
    slot_s: float
    subcarrier_hz: float
    gamma0: float            # beta0 / (N0 W), m^2/W
    altitude_m: float
    peak_power_w: float
    p_max_w: float
    circuit_power_w: float
    v_max_mps: float
    dv_max_mps: float
    gamma_tol: float
    eve_discs: tuple[tuple[float, float, float], ...]   # the J fixed discs (x, y, r_E); per episode when drawn
    rotor: RotorParams

    @classmethod
    def from_scenario(cls, s: Any) -> "SlotConstants":
        return cls(num_users=s.num_users, num_subcarriers=s.num_subcarriers, slot_s=s.slot_s,
                   subcarrier_hz=s.subcarrier_hz, gamma0=s.gamma0, altitude_m=s.altitude_m,
                   peak_power_w=s.peak_power_w, p_max_w=s.p_max_w, circuit_power_w=s.circuit_power_w,
                   v_max_mps=s.v_max_mps, dv_max_mps=s.dv_max_mps, gamma_tol=s.gamma_tol,
                   eve_discs=s.eavesdroppers, rotor=s.rotor_params)


class SlotState(NamedTuple):
    """What a slot's decision and the observation read of a UAV mission, built in one place by
    each env (``_slot_state``): for one env Python floats, ``users`` (k, 2), ``delivered`` (k,) and
    ``eves`` a tuple of (x, y, r) triples; for a batch (B,) arrays, (B, K, 2), (B, K), (B, J, 3).

    ``qx``, ``qy``: the UAV's position q[n-1] before the slot; ``vx``, ``vy``: the previous velocity
    v[n-1]; ``slot``: slots played so far (0 .. N-1); ``users``: the episode's user positions;
    ``delivered``: the (secure) bits each user got so far; ``eves``: the episode's eavesdropper
    discs (None: ``SlotConstants.eve_discs``)."""

    qx: Any
    qy: Any
    vx: Any
    vy: Any
    slot: Any
    users: NDArray[np.float64]
    delivered: NDArray[np.float64]
    eves: Any = None


# -- action codec ---------------------------------------------------------------------------------
def action_size(num_subcarriers: int) -> int:
    """2 (velocity) + 1 (total power) + N_F (power weights) + N_F (user choice)."""
    return 3 + 2 * num_subcarriers


def decode_parts(action: ArrayLike, c: SlotConstants) -> tuple[Any, Any, Any, NDArray[np.float64], NDArray[np.int64]]:
    """:func:`decode_action` split into (v_x, v_y, total power, power (..., N_F), user (..., N_F)).

    For a single action (1-D) the first three are Python floats (the single env's fast path).
    """
    a = np.array(action, dtype=np.float64)          # a copy, clipped in place (few temporaries: a batch
    np.clip(a, -1.0, 1.0, out=a)                    # of B x (3 + 2 N_F) is large)
    nf, k = c.num_subcarriers, c.num_users
    if a.ndim == 1:
        ax, ay, at = float(a[0]), float(a[1]), float(a[2])
    else:
        ax, ay, at = a[..., 0], a[..., 1], a[..., 2]
    total = c.peak_power_w * 0.5 * (at + 1.0)
    w = a[..., 3:3 + nf]
    w += 1.0                                        # (in a's copy: a + 1)
    wsum = w.sum(axis=-1)
    if a.ndim == 1:
        power = w * (total / wsum) if wsum > 0.0 else np.full(nf, total / nf)
    else:
        pos = wsum > 0.0
        w *= (total / np.where(pos, wsum, 1.0))[..., None]          # w (total / sum w), in place
        if not pos.all():
            w[~pos] = (total / nf)[~pos][..., None]                 # all weights -1: equal shares
        power = w
    u = a[..., 3 + nf:]
    u += 1.0
    u *= 0.5 * k
    user = u.astype(np.int64)
    np.minimum(user, k - 1, out=user)
    return c.v_max_mps * ax, c.v_max_mps * ay, total, power, user


def decode_action(action: ArrayLike, c: SlotConstants
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Action in [-1, 1]^(3 + 2 N_F) -> (velocity command (..., 2), power (..., N_F), user (..., N_F)).

    * ``a[0:2]``: velocity command V_max a (a box; the env then projects it onto the speed disc
      and the acceleration disc).
    * ``a[2]``: total transmit power P_peak (a + 1) / 2.
    * ``a[3:3+N_F]``: linear power weights w_i = (a_i + 1) / 2; subcarrier i gets the share
      w_i / sum(w) of the total (all weights -1: equal shares).
    * ``a[3+N_F:]``: user of subcarrier i, floor((a_i + 1) K / 2) clipped to 0..K-1.
    Values outside [-1, 1] are clipped first.
    """
    vx, vy, _, power, user = decode_parts(action, c)
    return np.stack([np.asarray(vx, dtype=np.float64), np.asarray(vy, dtype=np.float64)], axis=-1), power, user


def encode_action(velocity: ArrayLike, power_w: ArrayLike, user: ArrayLike, c: SlotConstants
                  ) -> NDArray[np.float32]:
    """Inverse of :func:`decode_action` for planners: exact up to float32 rounding.

    ``velocity`` (..., 2) with |v_x|, |v_y| <= V_max; ``power_w`` (..., N_F) >= 0 summing to at most
    P_peak; ``user`` (..., N_F) integers in 0..K-1. Raises ``ValueError`` outside those ranges.
    """
    v = np.asarray(velocity, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    u = np.asarray(user)
    nf, k = c.num_subcarriers, c.num_users
    if p.ndim == 0 or u.ndim == 0 or v.ndim == 0 or p.shape[-1] != nf or u.shape[-1] != nf or v.shape[-1] != 2:
        raise ValueError(f"expected velocity (..., 2), power and user (..., {nf}); got "
                         f"{v.shape}, {p.shape}, {u.shape}")
    if not (np.isfinite(v).all() and np.isfinite(p).all()):
        raise ValueError("velocity and power must be finite (no NaN or inf)")
    if np.any(np.abs(v) > c.v_max_mps * (1 + 1e-9)):
        raise ValueError("velocity components exceed v_max_mps")
    total = p.sum(axis=-1)
    if np.any(p < 0) or np.any(total > c.peak_power_w * (1 + 1e-9)):
        raise ValueError("power must be >= 0 with a total of at most peak_power_w")
    if np.any((u < 0) | (u >= k)) or not np.issubdtype(u.dtype, np.integer):
        raise ValueError(f"user must hold integers in 0..{k - 1}")
    pmax = p.max(axis=-1, keepdims=True)
    weights = np.where(pmax > 0.0, 2.0 * p / np.where(pmax > 0.0, pmax, 1.0) - 1.0, 1.0)
    a_total = 2.0 * total / c.peak_power_w - 1.0
    a_user = (2.0 * u + 1.0) / k - 1.0
    out = np.concatenate([v / c.v_max_mps, a_total[..., None], weights, a_user], axis=-1)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


# -- kinematics -----------------------------------------------------------------------------------
def _where(cond: Any, a: Any, b: Any) -> Any:
    return np.where(cond, a, b) if isinstance(cond, np.ndarray) else (a if cond else b)


def _not(b: Any) -> Any:
    return ~b if isinstance(b, np.ndarray) else not b


def _positive_part(x: Any) -> Any:
    return np.maximum(x, 0.0) if isinstance(x, np.ndarray) else (x if x > 0.0 else 0.0)


def project_velocity_xy(cx: Any, cy: Any, px: Any, py: Any, has_previous: Any, v_max: float,
                        dv_max: float) -> tuple[Any, Any, Any]:
    """Euclidean projection of the command (cx, cy) onto {||v|| <= v_max} and, where
    ``has_previous``, {||v - (px, py)|| <= dv_max} (C11, C12). Returns (v_x, v_y, projected?).

    Components may be Python floats (one env) or arrays of any common shape (a batch).
    ``(px, py)`` must satisfy ||p|| <= v_max (so the intersection is not empty). The projection
    onto the intersection of two discs is the projection onto one disc if that lands in the other,
    else the nearer crossing point of the two circles.
    """
    tol = 1e-12 * max(v_max, 1.0)
    if not (isinstance(cx, np.ndarray) or isinstance(cy, np.ndarray) or isinstance(px, np.ndarray)
            or isinstance(py, np.ndarray) or isinstance(has_previous, np.ndarray)):
        return _project_velocity_one(cx, cy, px, py, has_previous, v_max, dv_max, tol)
    no_prev = _not(has_previous)
    n = (cx * cx + cy * cy) ** 0.5
    dx, dy = cx - px, cy - py
    m = (dx * dx + dy * dy) ** 0.5
    feasible = (n <= v_max + tol) & ((m <= dv_max + tol) | no_prev)
    fs = _where(n > v_max, v_max / _where(n > 0.0, n, 1.0), 1.0)          # onto the speed disc
    sx, sy = cx * fs, cy * fs
    fa = _where(m > dv_max, dv_max / _where(m > 0.0, m, 1.0), 1.0)        # onto the acceleration disc
    ax, ay = px + dx * fa, py + dy * fa
    ex, ey = sx - px, sy - py
    s_ok = ((ex * ex + ey * ey) ** 0.5 <= dv_max + tol) | no_prev
    a_ok = (ax * ax + ay * ay) ** 0.5 <= v_max + tol
    d = (px * px + py * py) ** 0.5                                          # crossing points
    # below 1e-100 v_max the discs are concentric to far within tol, so one of the projections above
    # lands in the other disc; dividing by such a d would only overflow (along ~ v_max^2 / d)
    sd = _where(d > 1e-100 * max(v_max, 1.0), d, 1.0)
    along = (v_max * v_max - dv_max * dv_max + d * d) / (2.0 * sd)
    half = _positive_part(v_max * v_max - along * along) ** 0.5
    ux, uy = px / sd, py / sd
    c1x, c1y = ux * along - uy * half, uy * along + ux * half
    c2x, c2y = ux * along + uy * half, uy * along - ux * half
    e1x, e1y, e2x, e2y = cx - c1x, cy - c1y, cx - c2x, cy - c2y
    first = e1x * e1x + e1y * e1y <= e2x * e2x + e2y * e2y     # products: float ** 2 raises on overflow
    kx, ky = _where(first, c1x, c2x), _where(first, c1y, c2y)
    vx = _where(feasible, cx, _where(s_ok, sx, _where(a_ok, ax, kx)))
    vy = _where(feasible, cy, _where(s_ok, sy, _where(a_ok, ay, ky)))
    return vx, vy, _not(feasible)


def _project_velocity_one(cx: float, cy: float, px: float, py: float, has_previous: bool, v_max: float,
                          dv_max: float, tol: float) -> tuple[float, float, bool]:
    """:func:`project_velocity_xy` for one env: the same expressions on floats, each computed only
    on the branch that returns it (the general path evaluates every candidate for a batch)."""
    n = (cx * cx + cy * cy) ** 0.5
    dx, dy = cx - px, cy - py
    m = (dx * dx + dy * dy) ** 0.5
    if n <= v_max + tol and (not has_previous or m <= dv_max + tol):
        return cx, cy, False
    fs = v_max / n if n > v_max else 1.0                                   # onto the speed disc
    sx, sy = cx * fs, cy * fs
    ex, ey = sx - px, sy - py
    if not has_previous or (ex * ex + ey * ey) ** 0.5 <= dv_max + tol:
        return sx, sy, True
    fa = dv_max / m if m > dv_max else 1.0                                 # onto the acceleration disc
    ax, ay = px + dx * fa, py + dy * fa
    if (ax * ax + ay * ay) ** 0.5 <= v_max + tol:
        return ax, ay, True
    d = (px * px + py * py) ** 0.5                                          # crossing points
    sd = d if d > 1e-100 * max(v_max, 1.0) else 1.0
    along = (v_max * v_max - dv_max * dv_max + d * d) / (2.0 * sd)
    half = v_max * v_max - along * along
    half = (half if half > 0.0 else 0.0) ** 0.5
    ux, uy = px / sd, py / sd
    c1x, c1y = ux * along - uy * half, uy * along + ux * half
    c2x, c2y = ux * along + uy * half, uy * along - ux * half
    e1x, e1y, e2x, e2y = cx - c1x, cy - c1y, cx - c2x, cy - c2y
    if e1x * e1x + e1y * e1y <= e2x * e2x + e2y * e2y:
        return c1x, c1y, True
    return c2x, c2y, True


def project_velocity(command: ArrayLike, previous: ArrayLike, has_previous: ArrayLike,
                     v_max: float, dv_max: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`project_velocity_xy` on (..., 2) arrays. Returns (velocity (..., 2), projected?)."""
    x = np.asarray(command, dtype=np.float64)
    prev = np.asarray(previous, dtype=np.float64)
    has_prev = np.broadcast_to(np.asarray(has_previous, dtype=bool), np.broadcast_shapes(x.shape[:-1], prev.shape[:-1]))
    vx, vy, projected = project_velocity_xy(x[..., 0], x[..., 1], prev[..., 0], prev[..., 1],
                                            np.asarray(has_prev), v_max, dv_max)
    return np.stack([vx, vy], axis=-1), np.asarray(projected)


def advance(position: ArrayLike, velocity: ArrayLike, slot_s: float) -> NDArray[np.float64]:
    """q[n] = q[n-1] + tau v[n] (C10)."""
    return np.asarray(position, dtype=np.float64) + slot_s * np.asarray(velocity, dtype=np.float64)


def straight_line(start_xy: ArrayLike, end_xy: ArrayLike, num_slots: int, slot_s: float
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Constant-speed straight flight: positions q[1..N] (N, 2) and velocities v[1..N] (N, 2)."""
    q0 = np.asarray(start_xy, dtype=np.float64)
    v = (np.asarray(end_xy, dtype=np.float64) - q0) / (num_slots * slot_s)
    vel = np.broadcast_to(v, (num_slots, 2)).copy()
    pos = q0 + slot_s * np.cumsum(vel, axis=0)
    pos[-1] = end_xy  # exactly, not up to the rounding of the cumulative sum
    return pos, vel


# -- one slot -------------------------------------------------------------------------------------
def transmit_budget(flight_w: Any, c: SlotConstants) -> Any:
    """The slot's transmit power budget min(P_peak, P_max - P_C - P_fly), at least 0 (C4, C5)."""
    room = c.p_max_w - c.circuit_power_w - flight_w
    return _positive_part(_where(room < c.peak_power_w, room, c.peak_power_w))


def cap_transmit_power(power_w: ArrayLike, speed_mps: Any, c: SlotConstants
                       ) -> tuple[NDArray[np.float64], Any, Any]:
    """Scale powers down to the slot's :func:`transmit_budget`. Returns (power, P_fly, projected?).

    A float speed with 1-D powers (one slot) returns Python scalars for P_fly and projected?.
    """
    p = np.asarray(power_w, dtype=np.float64)
    single = p.ndim == 1 and isinstance(speed_mps, float)
    p_fly = flight_power(speed_mps if single else np.asarray(speed_mps, dtype=np.float64), c.rotor)
    budget = transmit_budget(p_fly, c)
    total = p.sum(axis=-1)
    if single:
        total = float(total)
        over = total > budget * (1.0 + 1e-12)
        return (p * (budget / total) if over else p), p_fly, over
    over = total > budget * (1.0 + 1e-12)
    scale = np.where(over, budget / np.where(total > 0, total, 1.0), 1.0)
    return p * scale[..., None], p_fly, over


def slot_outcome_xy(qx: Any, qy: Any, speed_mps: Any, power_w: NDArray[np.float64], user: NDArray[np.int64],
                    user_xy: NDArray[np.float64], c: SlotConstants, flight_w: Any = None,
                    snr_per_watt: Any = None, eves: Any = None, eve_distance_sq: Any = None) -> dict[str, Any]:
    """:func:`slot_outcome` on components: UAV position (qx, qy) and speed as floats (one slot,
    1-D ``power_w``/``user``, scalar results) or as arrays of the batch shape. ``flight_w`` may
    pass P_fly(speed) and ``snr_per_watt`` the users' gamma0 / d^2 (..., K) at (qx, qy) when the
    caller has them already; ``eves`` this episode's discs (a tuple of (x, y, r) for one slot,
    (..., J, 3) for a batch; None: ``c.eve_discs``); ``eve_distance_sq`` their
    :func:`~secure_env.core.secrecy.worst_case_disc_distance_sq` at (qx, qy) where the caller has it."""
    single = power_w.ndim == 1
    if snr_per_watt is None:
        users = np.asarray(user_xy, dtype=np.float64)
        if single:
            dx, dy = users[..., 0] - qx, users[..., 1] - qy
        else:
            dx, dy = users[..., 0] - np.asarray(qx)[..., None], users[..., 1] - np.asarray(qy)[..., None]
        snr_per_watt = c.gamma0 / squared_distance_xy(dx, dy, c.altitude_m)         # (..., K)
    if single:
        g = snr_per_watt[user]
        served = one_plus_snr(power_w, g)                                              # 1 + p g per subcarrier
        rate = rate_of_snr(served, c.subcarrier_hz)                                    # bit/s (subcarrier_rate)
        bits_per_user = c.slot_s * np.bincount(user, weights=rate, minlength=c.num_users)
        p_tx, p_peak_sub = float(power_w.sum()), float(power_w.max())
    else:
        # (slot, user) bins: the users' SNR per watt gathered by one flat take, and the bits summed
        # by one bincount, each row in subcarrier order as the single slot's bincount above (so a
        # batch row equals the single slot bit for bit)
        k, lead = c.num_users, user.shape[:-1]
        rows = int(np.prod(lead))
        bins = user.reshape(rows, -1) + k * np.arange(rows)[:, None]                   # (rows, N_F)
        if np.shape(snr_per_watt)[-1] == k:
            g = np.ascontiguousarray(np.broadcast_to(snr_per_watt, lead + (k,))).reshape(-1).take(bins)
            g = g.reshape(user.shape)                                                  # (..., N_F)
        else:
            g = np.take_along_axis(np.broadcast_to(snr_per_watt, lead + np.shape(snr_per_watt)[-1:]), user, axis=-1)
        served = one_plus_snr(power_w, g)
        rate = rate_of_snr(served, c.subcarrier_hz)
        bits_per_user = c.slot_s * np.bincount(bins.ravel(), weights=np.broadcast_to(rate, user.shape).ravel(),
                                               minlength=rows * k).reshape(lead + (k,))
        p_tx, p_peak_sub = power_w.sum(axis=-1), power_w.max(axis=-1)
    p_fly = flight_power(speed_mps, c.rotor) if flight_w is None else flight_w
    p_tot = total_power(p_tx, c.circuit_power_w, p_fly)
    d_e2 = eve_distance_sq
    if d_e2 is None:
        d_e2 = worst_case_disc_distance_sq(qx, qy, c.eve_discs if eves is None else eves, c.altitude_m)
    leak_max = leakage_snr(p_peak_sub, c.gamma0, d_e2)
    bits = float(bits_per_user.sum()) if single else bits_per_user.sum(axis=-1)
    return {
        "bits_per_user": bits_per_user,
        "bits": bits,
        "energy_j": c.slot_s * p_tot,
        "flight_power_w": p_fly,
        "transmit_power_w": p_tx,
        "leakage_snr_max": leak_max,
        "peak_subcarrier_power_w": p_peak_sub,
        "one_plus_snr": served,
        "eve_distance_sq": d_e2,
        "leakage_excess": _positive_part(leak_max / c.gamma_tol - (1.0 + LEAKAGE_RTOL)),
        "power_excess": _positive_part(p_tot / c.p_max_w - 1.0),
    }


def slot_outcome(position: ArrayLike, velocity: ArrayLike, power_w: ArrayLike, user: ArrayLike,
                 user_xy: ArrayLike, c: SlotConstants, eves: Any = None) -> dict[str, NDArray[Any]]:
    """Bits, energy and leakage of slots flown at ``velocity`` and served from ``position``.

    ``position``, ``velocity`` (..., 2); ``power_w``, ``user`` (..., N_F) (powers already within
    the slot's budget); ``user_xy`` (K, 2) or (..., K, 2). Keys: ``bits_per_user`` (..., K),
    ``bits``, ``energy_j``, ``flight_power_w``, ``transmit_power_w``, ``leakage_snr_max`` (worst
    case over every disc), ``peak_subcarrier_power_w``, ``leakage_excess`` (relative excess of the
    worst subcarrier over gamma_tol, beyond :data:`LEAKAGE_RTOL`), ``power_excess`` (relative
    excess of the total power over P_max).
    ``eves``: the discs (J, 3) or (..., J, 3) when not ``c.eve_discs``; the leakage is the worst
    case over every disc.
    """
    q = np.asarray(position, dtype=np.float64)
    v = np.asarray(velocity, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    u = np.asarray(user, dtype=np.int64)
    speed = np.sqrt(np.sum(v * v, axis=-1))
    if p.ndim == 1:
        e = None if eves is None else tuple(tuple(float(x) for x in d) for d in np.asarray(eves).reshape(-1, 3))
        return slot_outcome_xy(float(q[0]), float(q[1]), float(speed), p, u, np.asarray(user_xy), c, eves=e)
    return slot_outcome_xy(q[..., 0], q[..., 1], speed, p, u, np.asarray(user_xy), c, eves=eves)


def trajectory_outcome(positions: ArrayLike, velocities: ArrayLike, power_w: ArrayLike, user: ArrayLike,
                       user_xy: ArrayLike, c: SlotConstants, eves: Any = None) -> dict[str, Any]:
    """:func:`slot_outcome` over a whole plan (slots on the leading axis) plus the mission totals.

    Adds ``energy_efficiency_bits_per_joule`` (eq. (9)), ``mean_rate_bps`` (K,) (C6's
    mission-average rate) and ``total_bits``, ``total_energy_j``.
    """
    out: dict[str, Any] = slot_outcome(positions, velocities, power_w, user, user_xy, c, eves=eves)
    n = np.shape(positions)[0]
    out["total_bits"] = float(out["bits"].sum())
    out["total_energy_j"] = float(out["energy_j"].sum())
    out["energy_efficiency_bits_per_joule"] = float(energy_efficiency(out["bits"], out["energy_j"]))
    out["mean_rate_bps"] = out["bits_per_user"].sum(axis=0) / (n * c.slot_s)
    return out


def observation_features(c: SlotConstants, scale_m: float, start_xy: tuple[float, float],
                         end_xy: tuple[float, float], num_slots: int, state: SlotState) -> list[Any]:
    """The 12 geometry features that open the UAV envs' observation (floats or batch arrays):
    position - q0, velocity / V_max, slots left / N, offset to qF, reach margin, offset to the
    eavesdropper estimate, r_E, log10 of the whole-band leakage cap over P_peak (see the env).
    With J discs (``state.eves``: a tuple of (x, y, r) for one env, (B, J, 3) for a batch; None:
    ``c.eve_discs``) the disc is the binding one (:func:`~secure_env.core.secrecy.binding_disc`)
    and the cap the one of every disc."""
    qx, qy, vx, vy, eves = state.qx, state.qy, state.vx, state.vy, state.eves
    slots_left = num_slots - state.slot
    inv = 1.0 / scale_m
    ex, ey = end_xy[0] - qx, end_xy[1] - qy
    margin = (slots_left * c.v_max_mps * c.slot_s - (ex * ex + ey * ey) ** 0.5) * inv
    discs = c.eve_discs if eves is None else eves
    if isinstance(discs, tuple) and isinstance(qx, float):
        if len(discs) == 1:          # the paper's one disc: its distance directly (the hot path)
            wx, wy, r_e = discs[0]
            d_e2 = worst_case_eve_distance_sq_xy(qx - wx, qy - wy, r_e, c.altitude_m)
        else:
            j, d_e2 = binding_disc(qx, qy, discs, c.altitude_m)
            wx, wy, r_e = discs[j]
    else:
        arr = np.asarray(discs, dtype=np.float64)
        arr = np.broadcast_to(arr, np.shape(qx) + arr.shape[-2:])
        j, d_e2 = binding_disc(qx, qy, arr, c.altitude_m)
        pick = np.take_along_axis(arr, j[..., None, None], axis=-2)[..., 0, :]
        wx, wy, r_e = pick[..., 0], pick[..., 1], pick[..., 2]
    band = c.num_subcarriers * leakage_power_cap(c.gamma_tol, c.gamma0, d_e2) / c.peak_power_w
    log_band = np.log10(band) if isinstance(band, np.ndarray) else math.log10(band)
    return [(qx - start_xy[0]) * inv, (qy - start_xy[1]) * inv, vx / c.v_max_mps, vy / c.v_max_mps,
            slots_left / num_slots, ex * inv, ey * inv, margin, (wx - qx) * inv, (wy - qy) * inv,
            r_e * inv + 0.0 * qx, log_band]


def sample_users(rng: np.random.Generator, scenario: Any, batch_shape: tuple[int, ...] = ()
                 ) -> NDArray[np.float64]:
    """User positions (..., K, 2): the scenario's ``user_xy``, or uniform draws in ``user_area_xy``."""
    k = scenario.num_users
    if not scenario.random_users:
        return np.broadcast_to(np.asarray(scenario.user_xy, dtype=np.float64), batch_shape + (k, 2)).copy()
    lo, hi = (np.asarray(corner, dtype=np.float64) for corner in scenario.user_area_xy)
    return lo + (hi - lo) * rng.random(batch_shape + (k, 2))


def sample_eves(rng: np.random.Generator, scenario: Any, batch_shape: tuple[int, ...] = ()
                ) -> NDArray[np.float64]:
    """Eavesdropper discs (..., J, 3) of (x, y, r_E): the scenario's fixed discs, or with
    ``random_eves=True`` J centres uniform in ``eve_area`` and radii ``eve_radius_m`` (or uniform in
    ``eve_radius_range_m``), drawn from ``rng`` (after the users: a layout's users do not depend on
    whether its eavesdroppers are drawn)."""
    if not scenario.random_eves:
        fixed = np.asarray(scenario.eavesdroppers, dtype=np.float64)
        return np.broadcast_to(fixed, batch_shape + fixed.shape).copy()
    j = scenario.num_eve_discs
    lo, hi = (np.asarray(corner, dtype=np.float64) for corner in scenario.eve_area)
    centres = lo + (hi - lo) * rng.random(batch_shape + (j, 2))
    if scenario.eve_radius_range_m is None:
        radii = np.full(batch_shape + (j, 1), float(scenario.eve_radius_m))
    else:
        r0, r1 = scenario.eve_radius_range_m
        radii = r0 + (r1 - r0) * rng.random(batch_shape + (j, 1))
    return np.concatenate([centres, radii], axis=-1)


def eve_truth_rng(rng: np.random.Generator) -> np.random.Generator:
    """The generator of an episode's true eavesdropper positions: ``rng``'s bit generator jumped
    ahead (a copy; ``rng`` itself is not advanced, so drawing the truth changes no other draw of
    the episode or of the episodes after it), seeded by the env's generator as every draw is."""
    return np.random.Generator(rng.bit_generator.jumped())


def sample_eve_truth(rng: np.random.Generator, eves: ArrayLike) -> NDArray[np.float64]:
    """Each eavesdropper's true position, uniform in its disc: (..., J, 3) -> (..., J, 2), drawn
    from :func:`eve_truth_rng` of the env's generator."""
    return sample_in_discs(eve_truth_rng(rng), eves)


def realised_secrecy(qx: Any, qy: Any, power_w: NDArray[np.float64], user: NDArray[np.int64],
                     snr_per_watt: NDArray[np.float64] | None, eves: Any, truth_xy: NDArray[np.float64],
                     c: SlotConstants, served: NDArray[np.float64] | None = None,
                     eve_distance_sq: Any = None) -> dict[str, Any]:
    """The slot's secrecy against the worst case and against the true eavesdroppers (reported,
    never constrained: the objective and C7 stay worst-case).

    ``snr_per_watt`` (..., K) the users' gamma0 / d^2 at the serving position (qx, qy); ``eves``
    (..., J, 3) the discs, ``truth_xy`` (..., J, 2) the true positions. Returns
    ``secrecy_rate_bps`` (sum over subcarriers of W [log2(1 + p g_k) - log2(1 + p g_E)]^+ with
    g_E the worst case over every disc: the rate the worst case guarantees),
    ``realised_secrecy_rate_bps`` (the same with g_E the strongest true eavesdropper) and
    ``realised_leakage_snr_max`` (the largest SNR any true eavesdropper gets on any subcarrier),
    ``leakage_snr_max`` (the same at the worst-case points: what C7 bounds).

    ``served`` (1 + p g_k per subcarrier, :func:`~secure_env.core.ofdma.one_plus_snr`) and
    ``eve_distance_sq`` (the worst case over the discs) may come from :func:`slot_outcome_xy`'s
    ``one_plus_snr`` and ``eve_distance_sq`` of the same slot (then ``snr_per_watt`` is unused).
    """
    e = np.asarray(eves, dtype=np.float64)
    t = np.asarray(truth_xy, dtype=np.float64)
    qx_, qy_ = np.asarray(qx, dtype=np.float64)[..., None], np.asarray(qy, dtype=np.float64)[..., None]
    if eve_distance_sq is None:
        d_wc = worst_case_disc_distance_sq(np.asarray(qx, dtype=np.float64), np.asarray(qy, dtype=np.float64), e,
                                           c.altitude_m)
    else:
        d_wc = eve_distance_sq
    d_true = ((t[..., 0] - qx_) ** 2 + (t[..., 1] - qy_) ** 2 + c.altitude_m ** 2).min(axis=-1)
    p = np.asarray(power_w, dtype=np.float64)
    if served is None:
        g_user = np.take_along_axis(np.broadcast_to(snr_per_watt, user.shape[:-1] + np.shape(snr_per_watt)[-1:]),
                                    user, axis=-1)
        served = one_plus_snr(p, g_user)

    def rate_against(d2: Any) -> Any:
        # W [log2(1 + p g_k) - log2(1 + p g_E)]^+ as one logarithm of the quotient, in one buffer
        q = one_plus_snr(p, c.gamma0 / np.asarray(d2)[..., None])
        np.divide(served, q, out=q)
        np.maximum(q, 1.0, out=q)
        np.log2(q, out=q)
        return c.subcarrier_hz * q.sum(axis=-1)

    peak = p.max(axis=-1)
    out = {"secrecy_rate_bps": rate_against(d_wc), "realised_secrecy_rate_bps": rate_against(d_true),
           "realised_leakage_snr_max": peak * c.gamma0 / d_true, "leakage_snr_max": peak * c.gamma0 / d_wc}
    if p.ndim == 1:
        return {key: float(v) for key, v in out.items()}
    return out


def episode_secrecy(qx: NDArray[np.float64], qy: NDArray[np.float64], power_w: NDArray[np.float64],
                    user: NDArray[np.int64], user_xy: NDArray[np.float64], eves: ArrayLike,
                    truth_xy: ArrayLike, c: SlotConstants,
                    served: NDArray[np.float64] | None = None) -> dict[str, float]:
    """A mission's secrecy from its N slots (positions (N,), ``power_w``/``user`` (N, N_F)):
    ``secrecy_rate_bps`` and ``realised_secrecy_rate_bps`` (mission averages of
    :func:`realised_secrecy`'s slot rates), ``realised_leakage_snr_max`` and
    ``worst_case_leakage_snr_max`` (largest over slots). The slot values are summed one slot at a
    time, in order, as the vector env accumulates them. ``served``: the slots' 1 + p g (N, N_F)
    (:func:`slot_outcome_xy`'s ``one_plus_snr``) where the caller kept them."""
    g = None
    if served is None:
        g = c.gamma0 / squared_distance_xy(user_xy[:, 0] - qx[:, None], user_xy[:, 1] - qy[:, None], c.altitude_m)
    n = len(qx)
    r = realised_secrecy(qx, qy, power_w, user, g, np.broadcast_to(eves, (n,) + np.shape(eves)),
                         np.broadcast_to(truth_xy, (n,) + np.shape(truth_xy)), c, served=served)
    wc = real = 0.0
    for a, b in zip(r["secrecy_rate_bps"].tolist(), r["realised_secrecy_rate_bps"].tolist()):
        wc += a
        real += b
    return {"secrecy_rate_bps": wc / n, "realised_secrecy_rate_bps": real / n,
            "realised_leakage_snr_max": float(r["realised_leakage_snr_max"].max()),
            "worst_case_leakage_snr_max": float(r["leakage_snr_max"].max())}


def fixed_layout(scenario: Any, user_xy: ArrayLike, eves: ArrayLike) -> Any:
    """``scenario`` with an episode's drawn users (k, 2) and eavesdropper discs (J, 3) written in as
    fixed values (``random_users``/``random_eves`` off; with ``num_users_range`` the episode's k
    users, K = k): what a planner plans. ``scenario`` itself when it draws neither."""
    changes: dict[str, Any] = {}
    if scenario.random_users:
        users = tuple(tuple(u) for u in np.asarray(user_xy, dtype=float).tolist())
        changes.update(random_users=False, user_xy=users, num_users=len(users), num_users_range=None)
    if scenario.random_eves:
        fields = {f.name: f.default for f in dataclasses.fields(scenario)}
        changes.update(random_eves=False, num_eves=None, eve_radius_range_m=None, eve_area_xy=None,
                       eve_xy=fields["eve_xy"], eve_radius_m=fields["eve_radius_m"],
                       eve_discs=tuple(tuple(d) for d in np.asarray(eves, dtype=float).tolist()))
    return dataclasses.replace(scenario, **changes) if changes else scenario
