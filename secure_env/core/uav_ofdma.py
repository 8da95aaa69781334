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

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core.flight import RotorParams, flight_power
from secure_env.core.ofdma import energy_efficiency, squared_distance
from secure_env.core.secrecy import worst_case_eve_distance_sq

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
    eve_xy: tuple[float, float]
    eve_radius_m: float
    rotor: RotorParams

    @classmethod
    def from_scenario(cls, s: Any) -> "SlotConstants":
        return cls(num_users=s.num_users, num_subcarriers=s.num_subcarriers, slot_s=s.slot_s,
                   subcarrier_hz=s.subcarrier_hz, gamma0=s.gamma0, altitude_m=s.altitude_m,
                   peak_power_w=s.peak_power_w, p_max_w=s.p_max_w, circuit_power_w=s.circuit_power_w,
                   v_max_mps=s.v_max_mps, dv_max_mps=s.dv_max_mps, gamma_tol=s.gamma_tol,
                   eve_xy=tuple(s.eve_xy), eve_radius_m=s.eve_radius_m, rotor=s.rotor_params)


# -- action codec ---------------------------------------------------------------------------------
def action_size(num_subcarriers: int) -> int:
    """2 (velocity) + 1 (total power) + N_F (power weights) + N_F (user choice)."""
    return 3 + 2 * num_subcarriers


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
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    nf, k = c.num_subcarriers, c.num_users
    velocity = c.v_max_mps * a[..., 0:2]
    total = c.peak_power_w * 0.5 * (a[..., 2] + 1.0)
    w = 0.5 * (a[..., 3:3 + nf] + 1.0)
    wsum = np.sum(w, axis=-1, keepdims=True)
    share = np.where(wsum > 0.0, w / np.where(wsum > 0.0, wsum, 1.0), 1.0 / nf)
    power = total[..., None] * share
    user = np.minimum(np.floor(0.5 * (a[..., 3 + nf:] + 1.0) * k), k - 1).astype(np.int64)
    return velocity, power, user


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
    if p.shape[-1] != nf or u.shape[-1] != nf or v.shape[-1] != 2:
        raise ValueError(f"expected velocity (..., 2), power and user (..., {nf}); got "
                         f"{v.shape}, {p.shape}, {u.shape}")
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
def project_velocity(command: ArrayLike, previous: ArrayLike, has_previous: ArrayLike,
                     v_max: float, dv_max: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Euclidean projection of ``command`` onto {||v|| <= v_max} and, where ``has_previous``,
    {||v - previous|| <= dv_max} (C11, C12). Returns (velocity, projected?).

    ``previous`` must satisfy ||previous|| <= v_max (so the intersection is not empty). The
    projection onto the intersection of two discs is the projection onto one disc if that lands
    in the other, else the nearer crossing point of the two circles.
    """
    x = np.asarray(command, dtype=np.float64)
    prev = np.asarray(previous, dtype=np.float64)
    has_prev = np.asarray(has_previous, dtype=bool)
    tol = 1e-12 * max(v_max, 1.0)

    def onto_disc(p: NDArray[np.float64], centre: NDArray[np.float64] | float, r: float) -> NDArray[np.float64]:
        d = p - centre
        n = np.sqrt(np.sum(d * d, axis=-1, keepdims=True))
        scale = np.where(n > r, r / np.where(n > 0, n, 1.0), 1.0)
        return centre + d * scale

    def inside(p: NDArray[np.float64], centre: NDArray[np.float64] | float, r: float) -> NDArray[np.bool_]:
        d = p - centre
        return np.sum(d * d, axis=-1) <= (r + tol) ** 2

    in_speed = inside(x, 0.0, v_max)
    in_acc = inside(x, prev, dv_max) | ~has_prev
    pa = onto_disc(x, 0.0, v_max)                      # onto the speed disc
    pb = onto_disc(x, prev, dv_max)                    # onto the acceleration disc
    pa_ok = inside(pa, prev, dv_max) | ~has_prev
    pb_ok = inside(pb, 0.0, v_max)
    # crossing points of |v| = v_max and |v - prev| = dv_max
    d = np.sqrt(np.sum(prev * prev, axis=-1, keepdims=True))
    safe_d = np.where(d > 0, d, 1.0)
    along = (v_max ** 2 - dv_max ** 2 + d * d) / (2.0 * safe_d)
    half = np.sqrt(np.maximum(v_max ** 2 - along * along, 0.0))
    e = prev / safe_d
    perp = np.stack([-e[..., 1], e[..., 0]], axis=-1)
    c1 = e * along + perp * half
    c2 = e * along - perp * half
    nearer = np.where((np.sum((x - c1) ** 2, axis=-1) <= np.sum((x - c2) ** 2, axis=-1))[..., None], c1, c2)
    out = np.where((in_speed & in_acc)[..., None], x,
                   np.where(pa_ok[..., None], pa, np.where(pb_ok[..., None], pb, nearer)))
    return out, ~(in_speed & in_acc)


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
    return pos, vel


# -- one slot -------------------------------------------------------------------------------------
def cap_transmit_power(power_w: ArrayLike, speed_mps: ArrayLike, c: SlotConstants
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Scale powers down to the slot's budget min(P_peak, P_max - P_C - P_fly) (C4, C5).

    Returns (power, flight power, projected?).
    """
    p = np.asarray(power_w, dtype=np.float64)
    p_fly = flight_power(speed_mps, c.rotor)
    budget = np.maximum(np.minimum(c.peak_power_w, c.p_max_w - c.circuit_power_w - p_fly), 0.0)
    total = p.sum(axis=-1)
    over = total > budget * (1.0 + 1e-12)
    scale = np.where(over, budget / np.where(total > 0, total, 1.0), 1.0)
    return p * scale[..., None], p_fly, over


def slot_outcome(position: ArrayLike, velocity: ArrayLike, power_w: ArrayLike, user: ArrayLike,
                 user_xy: ArrayLike, c: SlotConstants) -> dict[str, NDArray[Any]]:
    """Bits, energy and leakage of slots flown at ``velocity`` and served from ``position``.

    ``position``, ``velocity`` (..., 2); ``power_w``, ``user`` (..., N_F) (powers already within
    the slot's budget); ``user_xy`` (K, 2) or (..., K, 2). Keys: ``bits_per_user`` (..., K),
    ``bits``, ``energy_j``, ``flight_power_w``, ``transmit_power_w``, ``leakage_snr_max``,
    ``leakage_excess`` (relative excess of the worst subcarrier over gamma_tol, beyond
    :data:`LEAKAGE_RTOL`), ``power_excess`` (relative excess of the total power over P_max).
    """
    q = np.asarray(position, dtype=np.float64)
    v = np.asarray(velocity, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    u = np.asarray(user)
    snr_per_watt = c.gamma0 / squared_distance(q, user_xy, c.altitude_m)          # (..., K)
    g = np.take_along_axis(snr_per_watt, u, axis=-1)                               # (..., N_F)
    rate = c.subcarrier_hz * np.log2(1.0 + p * g)                                  # bit/s
    onehot = u[..., None, :] == np.arange(c.num_users)[:, None]                    # (..., K, N_F)
    bits_per_user = c.slot_s * np.sum(np.where(onehot, rate[..., None, :], 0.0), axis=-1)
    speed = np.sqrt(np.sum(v * v, axis=-1))
    p_fly = flight_power(speed, c.rotor)
    p_tx = p.sum(axis=-1)
    p_tot = p_tx + c.circuit_power_w + p_fly
    d_e2 = worst_case_eve_distance_sq(q, c.eve_xy, c.eve_radius_m, c.altitude_m)
    leak_max = p.max(axis=-1) * c.gamma0 / d_e2
    return {
        "bits_per_user": bits_per_user,
        "bits": bits_per_user.sum(axis=-1),
        "energy_j": c.slot_s * p_tot,
        "flight_power_w": p_fly,
        "transmit_power_w": p_tx,
        "leakage_snr_max": leak_max,
        "leakage_excess": np.maximum(leak_max / c.gamma_tol - (1.0 + LEAKAGE_RTOL), 0.0),
        "power_excess": np.maximum(p_tot / c.p_max_w - 1.0, 0.0),
    }


def trajectory_outcome(positions: ArrayLike, velocities: ArrayLike, power_w: ArrayLike, user: ArrayLike,
                       user_xy: ArrayLike, c: SlotConstants) -> dict[str, Any]:
    """:func:`slot_outcome` over a whole plan (slots on the leading axis) plus the mission totals.

    Adds ``energy_efficiency_bits_per_joule`` (eq. (9)), ``mean_rate_bps`` (K,) (C6's
    mission-average rate) and ``total_bits``, ``total_energy_j``.
    """
    out: dict[str, Any] = slot_outcome(positions, velocities, power_w, user, user_xy, c)
    n = np.shape(positions)[0]
    out["total_bits"] = float(out["bits"].sum())
    out["total_energy_j"] = float(out["energy_j"].sum())
    out["energy_efficiency_bits_per_joule"] = float(energy_efficiency(out["bits"], out["energy_j"]))
    out["mean_rate_bps"] = out["bits_per_user"].sum(axis=0) / (n * c.slot_s)
    return out


def sample_users(rng: np.random.Generator, scenario: Any, batch_shape: tuple[int, ...] = ()
                 ) -> NDArray[np.float64]:
    """User positions (..., K, 2): the scenario's ``user_xy``, or uniform draws in ``user_area_xy``."""
    k = scenario.num_users
    if not scenario.random_users:
        return np.broadcast_to(np.asarray(scenario.user_xy, dtype=np.float64), batch_shape + (k, 2)).copy()
    lo, hi = (np.asarray(corner, dtype=np.float64) for corner in scenario.user_area_xy)
    return lo + (hi - lo) * rng.random(batch_shape + (k, 2))
