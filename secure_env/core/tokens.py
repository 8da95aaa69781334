"""The set observation of the UAV envs: global features, then one fixed-width token per user.

Pure functions over arrays, one code path for the single env (no batch axis) and the native vector
env (a leading env axis), so both give the same observation bit for bit.

Layout (``observation_mode="set"``; L = max(||qF - q0||, V_max tau), every length divided by L)::

    [ global (G) | user token 0 (W) | ... | user token M-1 (W) ]

* global, G = 13 ("full") or 19 ("compact", "velocity"): the 12 geometry features of
  :func:`secure_env.core.uav_ofdma.observation_features` (they hold the eavesdropper disc: offset
  to its centre and r_E / L), in the learnable modes the 6 layout features of
  :func:`secure_env.core.uav_actions.layout_features` (ties broken by distance, not by user
  order), then K / M, the share of the tokens that hold a user.
* M = ``max_users`` (``num_users`` when None) user tokens of W = :data:`USER_TOKEN_WIDTH` entries,
  :data:`USER_TOKEN_FEATURES`: offset from the UAV to the user (x, y), its horizontal distance,
  its delivered bits over N tau R_min capped at 1 (1 when R_min = 0), its R_min pace debt after the
  next slot over N tau R_min clipped to [-1, 1] (0 when R_min = 0; > 0: behind the pace), its
  clearance from the eavesdropper disc (||u_k - w_E|| - r_E, < 0 inside the disc), and the mask
  (1). Users fill tokens 0..K-1 in ``user_xy`` order; tokens K..M-1 are padding: every entry 0,
  mask included.

The mask is the last entry of every token, so a later token group (e.g. one token per
eavesdropper disc) can be appended after the user tokens with the same convention; an order-free
encoder reads the layout from :func:`set_layout` (``agents.encoders.UserSetExtractor``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core.uav_actions import LAYOUT_FEATURES, pace_debt
from secure_env.core.uav_ofdma import SlotState

#: number of geometry features of :func:`secure_env.core.uav_ofdma.observation_features`
GEOMETRY_FEATURES = 12
#: the entries of a user token, in order (the mask last)
USER_TOKEN_FEATURES = ("offset_x", "offset_y", "distance", "delivered", "pace_debt", "eve_clearance", "mask")
#: width W of a user token
USER_TOKEN_WIDTH = len(USER_TOKEN_FEATURES)
#: the entries of an eavesdropper-disc token, in order (the mask last)
EVE_TOKEN_FEATURES = ("offset_x", "offset_y", "radius", "clearance", "mask")
#: width of a disc token
EVE_TOKEN_WIDTH = len(EVE_TOKEN_FEATURES)


def global_size(layout_obs: bool) -> int:
    """G: the 12 geometry features, the 6 layout features where ``layout_obs`` (the learnable
    action modes), and the share of real user tokens."""
    return GEOMETRY_FEATURES + (LAYOUT_FEATURES if layout_obs else 0) + 1


def set_layout(scenario: Any) -> dict[str, int]:
    """The set observation's layout for a UAV scenario: ``global_dim`` (G), ``token_dim`` (W) and
    ``num_tokens`` (M), the keyword arguments of ``agents.encoders.UserSetExtractor``; with disc
    tokens (``scenario.eve_tokens`` J > 0) also ``extra_token_groups`` [(J, width)]."""
    out: dict[str, Any] = {"global_dim": global_size(scenario.action_mode != "full"), "token_dim": USER_TOKEN_WIDTH,
                           "num_tokens": scenario.user_tokens}
    if scenario.eve_tokens:
        out["extra_token_groups"] = [[scenario.eve_tokens, EVE_TOKEN_WIDTH]]
    return out


def disc_tokens(qx: Any, qy: Any, eves: Any, scale_m: float) -> NDArray[np.float64]:
    """One token per eavesdropper disc, :data:`EVE_TOKEN_FEATURES`: offset from the UAV to the disc
    centre (x, y) / L, r_E / L, the UAV's horizontal clearance from the disc (||q - w_E|| - r_E) / L
    (< 0 above the disc), mask 1. (J, 5) for one env (floats, ``eves`` (J, 3)), (B, J, 5) for a
    batch ((B,) arrays, (B, J, 3))."""
    e = np.asarray(eves, dtype=np.float64)
    inv = 1.0 / scale_m
    dx = e[..., 0] - np.asarray(qx, dtype=np.float64)[..., None]
    dy = e[..., 1] - np.asarray(qy, dtype=np.float64)[..., None]
    out = np.empty(e.shape[:-1] + (EVE_TOKEN_WIDTH,))
    out[..., 0] = dx * inv
    out[..., 1] = dy * inv
    out[..., 2] = e[..., 2] * inv
    out[..., 3] = (np.sqrt(dx * dx + dy * dy) - e[..., 2]) * inv
    out[..., 4] = 1.0
    return out


def user_tokens(state: SlotState, scenario: Any, scale_m: float, num_tokens: int) -> NDArray[np.float64]:
    """The user tokens (see the module docstring): (M, W) for one env (a
    :class:`~secure_env.core.uav_ofdma.SlotState` of floats, ``users`` (K, 2), ``delivered``
    (K,), int ``slot``), (B, M, W) for a batch ((B,) state arrays, (B, K, 2), (B, K)).
    ``delivered``: the (secure) bits each user got so far; ``num_tokens`` M >= K; tokens K..M-1
    are all zeros. ``state.eves``: the episode's discs (None: the scenario's fixed discs); a
    user's clearance is from the nearest disc edge."""
    s = scenario
    qx, qy, slot, users, delivered, eves = state.qx, state.qy, state.slot, state.users, state.delivered, state.eves
    if eves is None:
        eves = s.eavesdroppers
    single = users.ndim == 2
    k = users.shape[-2]
    inv = 1.0 / scale_m
    if single:   # one env: the same operations on plain floats (K is a handful), the same values
        return _tokens_one(float(qx), float(qy), users, delivered, int(slot), s, inv, num_tokens, tuple(eves))
    ux, uy = users[..., 0], users[..., 1]
    dx, dy = ux - np.asarray(qx)[:, None], uy - np.asarray(qy)[:, None]
    out = np.zeros(users.shape[:-2] + (num_tokens, USER_TOKEN_WIDTH))
    tok = out[..., :k, :]
    tok[..., 0] = dx * inv
    tok[..., 1] = dy * inv
    tok[..., 2] = np.sqrt(dx * dx + dy * dy) * inv
    need = s.num_slots * s.slot_s * s.r_min_bps
    if need > 0:
        tok[..., 3] = np.minimum(delivered / need, 1.0)
        tok[..., 4] = np.clip(pace_debt(delivered, slot, s) / need, -1.0, 1.0)
    else:
        tok[..., 3] = 1.0
    e = np.asarray(eves, dtype=np.float64)
    e = np.broadcast_to(e, users.shape[:-2] + e.shape[-2:])[..., None, :, :]                  # (B, 1, J, 3)
    wx, wy = ux[..., None] - e[..., 0], uy[..., None] - e[..., 1]
    tok[..., 5] = (np.sqrt(wx * wx + wy * wy) - e[..., 2]).min(axis=-1) * inv
    tok[..., 6] = 1.0
    return out


def _tokens_one(qx: float, qy: float, users: NDArray[np.float64], delivered: NDArray[np.float64], slot: int,
                s: Any, inv: float, num_tokens: int, eves: tuple[Any, ...]) -> NDArray[np.float64]:
    """:func:`user_tokens` of one env, in the batch path's order of operations."""
    need = s.num_slots * s.slot_s * s.r_min_bps
    owed = need * ((slot + 1) / s.num_slots)        # pace_debt's need (n + 1) / N
    row: list[float] = []
    for (ux, uy), b in zip(users.tolist(), delivered.tolist()):
        dx, dy = ux - qx, uy - qy
        if need > 0:
            frac = b / need
            frac = frac if frac < 1.0 else 1.0
            debt = (owed - b) / need
            debt = -1.0 if debt < -1.0 else (1.0 if debt > 1.0 else debt)
        else:
            frac, debt = 1.0, 0.0
        clear = math.inf
        for ex, ey, r_e in eves:
            wx, wy = ux - ex, uy - ey
            gap = math.sqrt(wx * wx + wy * wy) - r_e
            clear = gap if gap < clear else clear
        row += (dx * inv, dy * inv, math.sqrt(dx * dx + dy * dy) * inv, frac, debt, clear * inv, 1.0)
    row += [0.0] * ((num_tokens - len(users)) * USER_TOKEN_WIDTH)
    return np.array(row).reshape(num_tokens, USER_TOKEN_WIDTH)


__all__ = ["EVE_TOKEN_FEATURES", "EVE_TOKEN_WIDTH", "GEOMETRY_FEATURES", "USER_TOKEN_FEATURES", "USER_TOKEN_WIDTH",
           "disc_tokens", "global_size", "set_layout", "user_tokens"]
