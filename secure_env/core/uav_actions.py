"""Action modes of the UAV envs, decoded in one place for the single and the vector envs.

Every mode starts with a velocity command ``a[0:2]`` (V_max a, projected onto the speed disc and,
from slot 2 on, the acceleration disc). Then:

* ``"full"`` (the paper's decision variables, 3 + 2 N_F entries, +K for QuantumUav): total power,
  a power weight and a user per subcarrier (:func:`secure_env.core.uav_ofdma.decode_action`), then
  the QKD budgets.
* ``"compact"`` (3 + K entries, +K QKD budgets for QuantumUav): ``a[2]`` total transmit power
  P_peak (a + 1) / 2, ``a[3:3+K]`` per-user subcarrier shares (w_k = (a_k + 1) / 2, normalised;
  all -1: equal shares). Subcarriers are handed out in whole numbers by largest remainder
  (user 0 first), every subcarrier carries the same power total / N_F (channels are flat across
  subcarriers, so equal power is the water-filling optimum for one user).
* ``"velocity"`` (2 entries): the per-slot rule :func:`slot_rule` sets everything else from the
  state: the whole transmit budget min(P_peak, P_max - P_C - P_fly), equal per subcarrier but
  at most the leakage cap at the serving position; the R_min pace guard (:func:`reserved_counts`)
  first, then every other subcarrier to the user with the best channel (the nearest); for
  QuantumUav the photon count of :func:`secure_env.core.quantum_uav.rule_photons` for every
  served user and the minimum 8 m for the others.

The **safety layer** (``safety=True``; on by default in the compact and velocity modes) replaces
the velocity by :func:`secure_env.core.safety.safe_velocity` (q_F stays reachable), caps every
subcarrier's power at the leakage cap at the serving position (C7), in the compact mode reserves
the R_min pace guard's subcarriers before the agent's shares, and scales QKD budgets down so their
sum fits in the slot. ``info`` reports how much it acted.

**R_min pace guard.** User k is owed ``need (n / N) - delivered_k`` bits after slot n (need =
N tau R_min): it is given the fewest whole subcarriers whose (secure) bits this slot pay that
debt, at the slot's per-subcarrier power; if the debts exceed N_F subcarriers they share them in
proportion. Met every slot, the pace delivers R_min exactly by the end; it can fail only where
even the whole band cannot pay a debt (then the shortfall is reported and penalised).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core import uav_ofdma as model
from secure_env.core.uav_ofdma import SlotState
from secure_env.core.flight import flight_power
from secure_env.core.ofdma import squared_distance_xy, subcarrier_rate
from secure_env.core.quantum_uav import (budget_for_photons, budget_phase, decode_qkd_action, qkd_phase, rule_phase,
                                         secure_fraction)
from secure_env.core.safety import safe_velocity
from secure_env.core.secrecy import leakage_power_cap, worst_case_disc_distance_sq

ACTION_MODES = ("full", "compact", "velocity")
#: number of geometry features the learnable modes add to the observation
LAYOUT_FEATURES = 6


def action_size(mode: str, num_users: int, num_subcarriers: int, qkd: bool = False) -> int:
    """Length of the action vector of ``mode`` (``qkd``: QuantumUav's per-user QKD budgets)."""
    if mode == "full":
        return model.action_size(num_subcarriers) + (num_users if qkd else 0)
    if mode == "compact":
        return 3 + num_users + (num_users if qkd else 0)
    if mode == "velocity":
        return 2
    raise ValueError(f"action_mode={mode!r} is invalid: expected one of {list(ACTION_MODES)}")


def safety_default(mode: str, safety: bool | None) -> bool:
    """The safety layer is on by default in the learnable modes and off in the paper's full mode."""
    return (mode != "full") if safety is None else bool(safety)


# -- subcarrier bookkeeping -----------------------------------------------------------------------
def apportion(weights: NDArray[np.float64], n: Any) -> NDArray[np.int64]:
    """Split ``n`` whole subcarriers (int or (...,) ints) among K users in proportion to
    ``weights`` (..., K) >= 0 by largest remainder (ties to the lower index); all-zero weights
    share equally."""
    w = np.asarray(weights, dtype=np.float64)
    k = w.shape[-1]
    if w.ndim == 1 and np.ndim(n) == 0:   # one env
        return np.array(_apportion_one(w.tolist(), int(n)), dtype=np.int64)
    total = w.sum(axis=-1, keepdims=True)
    shares = np.where(total > 0.0, w / np.where(total > 0.0, total, 1.0), 1.0 / k)
    n_arr = np.asarray(n, dtype=np.int64)
    raw = shares * n_arr[..., None]
    base = np.floor(raw).astype(np.int64)
    left = n_arr - base.sum(axis=-1)
    order = np.argsort(-(raw - base), axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1, kind="stable")
    return base + (rank < left[..., None])


def _apportion_one(weights: list[float], n: int) -> list[int]:
    """:func:`apportion` for one env: the same arithmetic on K plain floats, same result."""
    k = len(weights)
    tot = sum(weights)
    raw = [x / tot * n for x in weights] if tot > 0.0 else [1.0 / k * n] * k
    base = [int(r) for r in raw]                  # floor: every share is >= 0
    left = n - sum(base)
    if left > 0:
        gap = [b - r for b, r in zip(base, raw)]                               # -(raw - base)
        for i in sorted(range(k), key=gap.__getitem__)[:left]:                 # stable, as numpy's
            base[i] += 1
    return base


def counts_to_users(counts: NDArray[np.int64], num_subcarriers: int) -> NDArray[np.int64]:
    """User of each subcarrier (..., N_F) for whole-subcarrier counts (..., K): user 0 first.
    Rows whose counts fill the band are laid out by one ``np.repeat`` over the flattened blocks;
    a row that fills less gives its last subcarriers to the last user."""
    counts = np.asarray(counts, dtype=np.int64)
    k = counts.shape[-1]
    if (counts.sum(axis=-1) == num_subcarriers).all():
        rows = counts.reshape(-1, k)
        return np.repeat(np.tile(np.arange(k), len(rows)), rows.ravel()).reshape(counts.shape[:-1] + (num_subcarriers,))
    ends = np.cumsum(counts, axis=-1)
    idx = np.arange(num_subcarriers)
    return np.minimum((idx[..., :, None] >= ends[..., None, :]).sum(axis=-1), k - 1)


def reserved_counts(debt_bits: NDArray[np.float64], bits_per_subcarrier: NDArray[np.float64],
                    num_subcarriers: int) -> NDArray[np.int64]:
    """The R_min pace guard: fewest whole subcarriers paying each user's debt (..., K) at its
    per-subcarrier bits; debts beyond the band share it in proportion (floor)."""
    debt = np.maximum(np.asarray(debt_bits, dtype=np.float64), 0.0)
    b = np.asarray(bits_per_subcarrier, dtype=np.float64)
    if debt.ndim == 1 and b.shape == debt.shape:   # one env: the same arithmetic on K plain floats
        one = _reserved_one(debt.tolist(), b.tolist(), num_subcarriers)
        if one is not None:
            return np.array(one, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(debt > 0.0, np.where(b > 0.0, np.ceil(debt / np.where(b > 0.0, b, 1.0)), num_subcarriers), 0.0)
    total = need.sum(axis=-1, keepdims=True)
    scaled = np.floor(need * num_subcarriers / np.maximum(total, 1.0))
    return np.where(total > num_subcarriers, scaled, need).astype(np.int64)


def _reserved_one(debt: list[float], bits: list[float], num_subcarriers: int) -> list[int] | None:
    """:func:`reserved_counts` for one env on K plain floats (the same arithmetic); None where a
    count is beyond int64 (or inf), which the array path handles."""
    need = []
    for d, bb in zip(debt, bits):
        x = (d / bb if bb > 0.0 else float(num_subcarriers)) if d > 0.0 else 0.0    # debts <= 0 owe nothing
        if not x < 1e18:
            return None
        need.append(float(math.ceil(x)))
    total1 = sum(need)
    if total1 > num_subcarriers:
        return [math.floor(x * num_subcarriers / max(total1, 1.0)) for x in need]
    return [int(x) for x in need]


def pace_debt(delivered: NDArray[np.float64], slot: Any, scenario: Any) -> NDArray[np.float64]:
    """Bits each user is behind the R_min pace after the coming slot: N tau R_min (n + 1) / N minus
    what it got so far (``delivered`` (K,) with an int ``slot``, or (B, K) with (B,) slots)."""
    s = scenario
    if not isinstance(slot, np.ndarray) or slot.ndim == 0:
        base = s.num_slots * s.slot_s * s.r_min_bps * ((int(slot) + 1) / s.num_slots)
        if isinstance(delivered, list):      # one env's K floats (decide_slot): a list, same bits
            return [base - b for b in delivered]
        return base - delivered
    frac = (np.asarray(slot) + 1) / s.num_slots
    return s.num_slots * s.slot_s * s.r_min_bps * frac[:, None] - delivered


# -- the slot -------------------------------------------------------------------------------------
def _min(a: Any, b: Any) -> Any:
    return np.minimum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else (a if a < b else b)


def decide_slot(a: NDArray[np.float64], mode: str, safety: bool, c: model.SlotConstants, scenario: Any,
                state: SlotState) -> dict[str, Any]:
    """Decode the action of one slot (1-D ``a``, a :class:`SlotState` of floats) or of a batch
    ((B, n) ``a``, a :class:`SlotState` of (B,) arrays) into what the slot flies and transmits.

    The state's ``eves`` (None: ``c.eve_discs``) are the episode's eavesdropper discs: the leakage
    cap is the tightest over every disc. Returns ``vx``, ``vy``,
    ``speed``, ``flight_w``, ``qx``, ``qy`` (the serving position), ``power_w`` and ``user``
    (..., N_F), ``velocity_projected``, ``power_projected``, ``qkd_budget_s`` (QuantumUav with QKD
    on; else None), ``qkd_phase`` (their :func:`~secure_env.core.quantum_uav.qkd_phase` at the
    serving position where the decoding computed it, else None), ``snr_per_watt`` (gamma0 / d^2 of
    every user at the serving position (..., K) in the learnable modes, else None),
    ``eve_distance_sq`` (the worst-case squared distance over the discs at the serving position
    where the leakage cap needed it, else None) and the safety
    layer's report:
    ``safety_velocity_blend`` (lambda: 0 kept the command, 1 took the homing command),
    ``safety_velocity_change_mps``, ``safety_power_cut_w``
    (transmit power removed by the leakage cap), ``safety_reserved_subcarriers`` (given by the
    R_min guard), ``safety_acted``.
    """
    s = scenario
    qx, qy, pvx, pvy, slot, users, delivered, eves = state
    single = a.ndim == 1
    nf, k = c.num_subcarriers, c.num_users
    qkd = bool(getattr(s, "qkd_enabled", False))
    if mode == "full":
        # (the full mode's decoders clip their parts)
        cx, cy, _, power, user = model.decode_parts(a[..., :model.action_size(nf)], c)
    elif single:
        # one env: the action's floats clipped to [-1, 1] once (QKD budgets are clipped by their decoder)
        al = [-1.0 if x < -1.0 else (1.0 if x > 1.0 else x) for x in a[:3 + k].tolist()]
        cx, cy = c.v_max_mps * al[0], c.v_max_mps * al[1]
    else:
        a = a.clip(-1.0, 1.0)
        cx, cy = c.v_max_mps * a[:, 0], c.v_max_mps * a[:, 1]
    has_prev = slot > 0
    vx, vy, v_projected = model.project_velocity_xy(cx, cy, pvx, pvy, has_prev, c.v_max_mps, c.dv_max_mps)
    left_after = s.num_slots - slot - 1
    if safety:
        px, py = vx, vy
        vx, vy, blend = safe_velocity(qx, qy, pvx, pvy, has_prev, vx, vy, left_after, s.end_xy, c.slot_s,
                                      c.v_max_mps, c.dv_max_mps)
        v_change = ((vx - px) ** 2 + (vy - py) ** 2) ** 0.5
    else:
        blend = v_change = 0.0 if single else np.zeros(np.shape(qx))
    speed = (vx * vx + vy * vy) ** 0.5
    nqx, nqy = qx + c.slot_s * vx, qy + c.slot_s * vy                     # C10: q[n] = q[n-1] + tau v[n]
    out: dict[str, Any] = {"vx": vx, "vy": vy, "speed": speed, "qx": nqx, "qy": nqy,
                           "velocity_projected": v_projected, "qkd_budget_s": None, "qkd_phase": None,
                           "snr_per_watt": None, "eve_distance_sq": None,
                           "safety_velocity_blend": blend, "safety_velocity_change_mps": v_change}
    needs_cap = safety or mode == "velocity"
    if needs_cap:
        d_e2 = worst_case_disc_distance_sq(nqx, nqy, c.eve_discs if eves is None else eves, c.altitude_m)
        cap = leakage_power_cap(c.gamma_tol, c.gamma0, d_e2)
        out["eve_distance_sq"] = d_e2                    # the slot's outcome needs it at the same place
    cut = 0.0 if single else np.zeros(np.shape(qx))
    reserved_total = 0 if single else np.zeros(np.shape(qx), dtype=np.int64)

    if mode == "full":
        power, p_fly, p_projected = model.cap_transmit_power(power, speed, c)
        if safety:
            capped = np.minimum(power, cap if single else np.asarray(cap)[..., None])
            cut = power.sum(axis=-1) - capped.sum(axis=-1)
            cut = float(cut) if single else cut
            power = capped
        if qkd:
            budget_s = decode_qkd_action(a[..., model.action_size(nf):], c.slot_s)
            out["qkd_budget_s"] = _fit_in_slot(budget_s, c) if safety else budget_s
    else:
        p_fly = flight_power(speed, c.rotor)
        budget = model.transmit_budget(p_fly, c)
        if mode == "compact":
            wanted = c.peak_power_w * 0.5 * ((al[2] if single else a[:, 2]) + 1.0)
            p_projected = wanted > budget * (1.0 + 1e-12)
            total = _min(wanted, budget)
            weights = [0.5 * (x + 1.0) for x in al[3:3 + k]] if single else 0.5 * (a[:, 3:3 + k] + 1.0)
        else:
            total = budget
            p_projected = False if single else np.zeros(np.shape(qx), dtype=bool)
        p_sub = total / nf
        if needs_cap:
            p_sub = _min(p_sub, cap)
            if mode == "compact":
                cut = (total / nf - p_sub) * nf
            p_rule = _min(budget / nf, cap)          # the guard's subcarriers: the rule's power
        else:
            p_rule = p_sub
        if single:   # squared_distance_xy's sum on K floats, the same bits as on arrays
            d2 = [squared_distance_xy(ux - nqx, uy - nqy, c.altitude_m) for ux, uy in users.tolist()]
            g = np.array([c.gamma0 / x for x in d2])                                      # (K,)
        else:
            d2 = squared_distance_xy(users[..., 0] - nqx[:, None], users[..., 1] - nqy[:, None], c.altitude_m)
            g = c.gamma0 / d2
        out["snr_per_watt"] = g                          # the slot's outcome needs it at the same place
        p_col = p_sub if single else np.asarray(p_sub)[:, None]
        r_col = p_rule if single else np.asarray(p_rule)[:, None]
        bits_sc = c.slot_s * subcarrier_rate(r_col, g, c.subcarrier_hz)           # (..., K) at the rule's power
        guard = mode == "velocity" or safety
        if guard:
            owed = pace_debt(delivered.tolist() if single else delivered, slot, s)   # one env: a list
        factor: Any = 1.0
        if qkd:
            # the rule's photon counts: the velocity mode's QKD phase, and with the safety layer
            # the least QKD phase of a user owed bits (skipped in one env when nobody is owed)
            use_rule = mode == "velocity" or (safety and not (single and max(owed) <= 0.0))
            rule_ph = None
            dist = np.sqrt(d2)            # the users' 3-D distances, as quantum_uav.user_distances
            if use_rule:
                photons, dist, rule_ph = rule_phase(s, c, nqx, nqy, users, dist=dist)
                rule_budget = budget_for_photons(photons, dist, s.light_speed_mps)
            if mode == "compact":
                budget_s = decode_qkd_action(a[..., 3 + k:3 + 2 * k], c.slot_s)
                if safety:
                    if use_rule:
                        budget_s = np.where(np.asarray(owed) > 0.0, np.maximum(budget_s, rule_budget), budget_s)
                    budget_s = _fit_in_slot(budget_s, c)
                phase, _ = budget_phase(s, c, budget_s, nqx, nqy, users, dist=dist)
                factor = secure_fraction(s, c, budget_s, nqx, nqy, users, phase=phase)
            else:
                # the rule's budgets hold exactly its photon counts (budget_for_photons): its phase
                budget_s = rule_budget
                factor = secure_fraction(s, c, budget_s, nqx, nqy, users, phase=rule_ph)
        if single:
            res_l = [0] * k
            if guard:
                bits_l = (bits_sc * factor).tolist()
                res_l = _reserved_one(owed, bits_l, nf) or reserved_counts(owed, bits_l, nf).tolist()
            reserved_total = sum(res_l)
            rest = nf - reserved_total
            if mode == "velocity":
                # every other subcarrier to the nearest user: apportion() with one-hot weights, exactly
                cnt_l = list(res_l)
                cnt_l[int(g.argmax())] += rest
            else:
                cnt_l = [r + x for r, x in zip(res_l, _apportion_one(weights, rest))]
            assert sum(cnt_l) == nf, "whole-subcarrier counts must fill the band"
            # user blocks in order, the guard's subcarriers first in each: counts_to_users's layout
            # of a full band, inline on this hot path
            user = np.arange(k).repeat(cnt_l)
            power = np.full(nf, p_sub)
            if reserved_total:
                start = 0
                for n_k, r_k in zip(cnt_l, res_l):
                    power[start:start + r_k] = p_rule
                    start += n_k
        else:
            reserved = reserved_counts(owed, bits_sc * factor, nf) if guard else np.zeros(g.shape, dtype=np.int64)
            rest = nf - reserved.sum(axis=-1)
            if mode == "velocity":
                counts = reserved.copy()
                counts[np.arange(len(counts)), np.argmax(g, axis=-1)] += rest
            else:
                counts = reserved + apportion(weights, rest)
            # user blocks in order, the guard's subcarriers first in each: every row's counts fill
            # the band, so one np.repeat over the flattened (env, user) blocks lays out the batch
            flat = counts.ravel()
            starts = np.cumsum(counts, axis=-1) - counts
            user = counts_to_users(counts, nf)
            pos = np.arange(nf) - np.repeat(starts.ravel(), flat).reshape(user.shape)
            guarded = pos < np.repeat(reserved.ravel(), flat).reshape(user.shape)
            power = np.where(guarded, r_col, p_col) * np.ones(user.shape)
            reserved_total = reserved.sum(axis=-1)
        if qkd:
            if mode == "velocity":
                # users left without a subcarrier run the shortest QKD phase (8 m pairs)
                served = (np.array(cnt_l) if single else counts) > 0
                if served.all():
                    budget_s, phase = rule_budget, rule_ph
                else:
                    photons = np.where(served, photons, 8.0 * s.photons_m)
                    budget_s = budget_for_photons(photons, dist, s.light_speed_mps)
                    phase = qkd_phase(photons, dist, s.photons_m, s.light_speed_mps, s.alpha_beta, whole=True)
            # the final budgets' QKD phase, so the slot's QKD stage need not compute it again
            out["qkd_budget_s"], out["qkd_phase"] = budget_s, phase
    out.update(power_w=power, user=user, flight_w=p_fly, power_projected=p_projected,
               safety_power_cut_w=cut, safety_reserved_subcarriers=reserved_total)
    if single:
        out["safety_acted"] = bool(blend > 0.0 or cut > 0.0 or (safety and out["safety_reserved_subcarriers"] > 0))
    else:
        out["safety_acted"] = (np.asarray(blend) > 0.0) | (np.asarray(cut) > 0.0) | (
            safety & (np.asarray(out["safety_reserved_subcarriers"]) > 0))
    return out


def _fit_in_slot(budget_s: NDArray[np.float64], c: model.SlotConstants) -> NDArray[np.float64]:
    """The safety layer on QKD budgets: scaled down (all users alike) to fit in the slot."""
    total = budget_s.sum(axis=-1, keepdims=True)
    return budget_s * np.minimum(1.0, c.slot_s * (1.0 - 1e-6) / total)


# -- observation ----------------------------------------------------------------------------------
def layout_features(state: SlotState, scenario: Any, scale_m: float, order_free: bool = False) -> NDArray[np.float64]:
    """The 6 features the learnable modes add (divided by L): offsets from the UAV to the nearest
    user, to the users' centroid, and to the user furthest behind its R_min pace after the next
    slot (the nearest user when nobody is behind). (6,) for one env, (B, 6) for a batch.

    Users equally far behind (every user at slot 0, before anyone is served) are a tie: the flat
    observation takes the first in ``users`` order; ``order_free=True`` (the set observation) takes
    the nearest of them, so that the features do not depend on the order of the users.
    ``state``: the :class:`SlotState` after the last slot (position, users, delivered bits, slot)."""
    s = scenario
    qx, qy, slot, users, delivered = state.qx, state.qy, state.slot, state.users, state.delivered
    single = users.ndim == 2
    if single:   # one env: the same sums and quotients in plain floats (K is a handful)
        rel1 = [(ux - qx, uy - qy) for ux, uy in users.tolist()]
        d21 = [rx * rx + ry * ry for rx, ry in rel1]
        base = s.num_slots * s.slot_s * s.r_min_bps * ((int(slot) + 1) / s.num_slots)   # pace_debt's, in floats
        owed1 = [base - b for b in delivered.tolist()]
        near1 = d21.index(min(d21))
        top = max(owed1)
        if top > 0.0 and order_free:
            behind1 = min((i for i, o in enumerate(owed1) if o == top), key=d21.__getitem__)
        else:
            behind1 = owed1.index(top) if top > 0.0 else near1
        sx = sy = 0.0
        for rx, ry in rel1:
            sx += rx
            sy += ry
        k1 = len(rel1)
        feats = [*rel1[near1], sx / k1, sy / k1, *rel1[behind1]]
        return np.array([f / scale_m for f in feats])
    q = np.stack([qx, qy], axis=-1)
    rel = users - q[:, None, :]                                               # (B, K, 2)
    d2 = (rel * rel).sum(axis=-1)
    near = np.argmin(d2, axis=-1)
    owed = pace_debt(delivered, slot, s)
    top = owed.max(axis=-1)
    if order_free:
        worst = np.argmin(np.where(owed == top[:, None], d2, np.inf), axis=-1)
    else:
        worst = np.argmax(owed, axis=-1)
    behind = np.where(top > 0.0, worst, near)
    rows = np.arange(users.shape[0])
    parts = [rel[rows, near], rel.mean(axis=1), rel[rows, behind]]
    return np.concatenate(parts, axis=-1) / scale_m


__all__ = ["ACTION_MODES", "LAYOUT_FEATURES", "SlotState", "action_size", "apportion", "counts_to_users", "decide_slot",
           "layout_features", "pace_debt", "reserved_counts", "safety_default"]
