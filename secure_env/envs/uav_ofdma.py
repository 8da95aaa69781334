"""UavSecureOfdma-v0: an energy-efficient, secure UAV-OFDMA downlink (Cai et al. 2019); the single env
and its native vector env."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from secure_env.core import tokens, uav_actions
from secure_env.core import uav_ofdma as model
from secure_env.core.ofdma import energy_efficiency_scalar
from secure_env.envs.batched import BatchedEnv, PlayResult
from secure_env.scenarios import UavOfdmaScenario, scenario_from

OBS_LIMIT = 10.0
#: reward unit: the energy-efficiency part of the return is in kbit/J
EE_UNIT_BITS_PER_J = 1e3
#: the destination counts as reached within this distance (m)
DESTINATION_TOL_M = 1.0
#: per-user info entries, padded to K with zeros for absent users (``num_users_range``) so that
#: every episode's info has one shape (gymnasium's vector envs stack them)
PER_USER_INFO = ("bits_per_user", "secure_bits_per_user", "qkd_time_s", "basis_prob", "key_error_rate")


def active_action(a: np.ndarray, mode: str, k: int, k_max: int, num_subcarriers: int) -> np.ndarray:
    """The action entries (last axis) of an episode's k present users out of K = ``k_max``
    (``num_users_range``): the compact mode's shares and both modes' QKD budgets of users
    k..K-1 are dropped (they act on nobody); the velocity mode has none."""
    if k == k_max or mode == "velocity":
        return a
    if mode == "compact":
        head = a[..., :3 + k]
        return np.concatenate([head, a[..., 3 + k_max:3 + k_max + k]], axis=-1) if a.shape[-1] > 3 + k_max else head
    nf_part = model.action_size(num_subcarriers)
    return a[..., :nf_part + k] if a.shape[-1] > nf_part else a


def _pad_users(x: Any, k_max: int) -> np.ndarray:
    """A per-user array (k, ...) padded with zeros to (K, ...)."""
    x = np.asarray(x)
    out = np.zeros((k_max,) + x.shape[1:], dtype=x.dtype)
    out[:len(x)] = x
    return out


#: SlotState from a tuple of its 8 fields in order, without the keyword handling (a hot path)
_new_state = model.SlotState._make


class _MissionTotals:
    """The running totals of a UAV mission and each slot's reward, kept in the same lines by the
    single env (Python floats: one mission) and the vector env (arrays: one entry per sub-env)."""

    def _constants_for(self, k: int) -> model.SlotConstants:
        """The slot constants of an episode with k users (``num_users_range``), made once per k."""
        if k not in self._k_constants:
            self._k_constants[k] = dataclasses.replace(self._base_constants, num_users=k)
        return self._k_constants[k]

    def _slot_state(self) -> model.SlotState:
        """The state a slot's decision and the observation read, built here for both envs
        (floats and a tuple of discs in the single env, arrays in the vector env)."""
        return _new_state((self._qx, self._qy, self._vx, self._vy, self._slot, self._users, self._bits_user,
                           self._eve_arg))

    def _add_slot(self, out: dict[str, Any], extra: dict[str, Any] | None) -> tuple[Any, Any, Any, Any, Any]:
        """Add the slot just played (``out`` of :func:`~secure_env.core.uav_ofdma.slot_outcome_xy`,
        ``extra`` of ``_slot_extra``: None, or the QKD phase's secure bits, energy and cost) to the
        totals; returns the slot's reward before the end-of-mission penalties, its energy, leakage
        excess, power excess and extra cost."""
        bits = out["bits"]
        energy = out["energy_j"] if extra is None else extra["energy_j"]
        self._bits_user += out["bits_per_user"] if extra is None else extra["secure_bits_per_user"]
        self._bits += bits
        self._secure += bits if extra is None else extra["secure_bits"]
        self._energy += energy
        ee = self._secure / self._energy      # eq. (9) on the running totals (ofdma.energy_efficiency_scalar)
        leak, pexc = out["leakage_excess"], out["power_excess"]
        extra_cost = 0.0 if extra is None else extra["cost"]
        self._leak_violations += leak > 0.0
        self._power_violations += pexc > 0.0
        reward = (ee - self._ee) / EE_UNIT_BITS_PER_J - self.scenario.leakage_penalty * (leak + pexc + extra_cost)
        self._ee = ee
        return reward, energy, leak, pexc, extra_cost


class UavSecureOfdmaEnv(_MissionTotals, gym.Env):
    """A rotary-wing UAV base station flies from q0 to qF and serves K users over N_F subcarriers.

    ## Description
    The model of Cai et al. 2019 (spec ``cai2019_model.md`` §1-7). In each of N slots of length
    tau the UAV (altitude H) flies with velocity v[n] from q[n-1] to q[n] = q[n-1] + tau v[n] and
    then serves the users from q[n]: subcarrier i goes to one user k with power p_i, giving
    W log2(1 + p_i beta0 / (N0 W d_k^2)) bit/s over the LoS channel. Energy per slot is
    tau (sum_i p_i + P_C + P_fly(||v[n]||)) with the rotary-wing power P_fly of eq. (4). An
    eavesdropper lies somewhere within r_E of w_E; at its worst-case (closest) position the SNR it
    leaks on subcarrier i is p_i beta0 / (N0 W d_E,min^2), to be kept at most gamma_tol (C7). The
    paper's objective is the mission's energy efficiency, total bits / total energy (eq. (9)),
    under the leakage limit, a mission-average rate of R_min per user (C6), q[N] = qF (C9), and
    the speed, acceleration, peak-power and total-power limits.

    ## Action space
    ``Box(-1, 1, (n,), float32)``, decoded in one place for the single and the vector env
    (:func:`secure_env.core.uav_actions.decide_slot`); ``action_mode`` picks the interface:

    * ``"full"`` (default; the paper's decision variables, n = 3 + 2 N_F), decoded by
      :func:`secure_env.core.uav_ofdma.decode_action`: ``a[0:2]`` velocity command V_max a;
      ``a[2]`` total transmit power P_peak (a + 1)/2; ``a[3:3+N_F]`` power weights (a_i + 1)/2
      (subcarrier i gets its weight's share of the total); ``a[3+N_F:]`` user of each subcarrier,
      floor((a_i + 1) K / 2). :func:`~secure_env.core.uav_ofdma.encode_action` is the inverse for
      planners.
    * ``"compact"`` (n = 3 + K): velocity command, total power P_peak (a + 1)/2, then per-user
      subcarrier shares (a_k + 1)/2 (normalised; whole subcarriers by largest remainder, equal
      power on every subcarrier: channels are flat across subcarriers).
    * ``"velocity"`` (n = 2): the agent only flies; a documented per-slot rule sets the rest from
      the state: the whole transmit budget min(P_peak, P_max - P_C - P_fly), equal per
      subcarrier but at most the leakage cap at the serving position; first the R_min pace guard
      (each user gets the fewest whole subcarriers that pay the bits it is behind the pace
      N tau R_min n / N), then every other subcarrier to the user with the best channel.

    The velocity command is projected exactly onto {||v|| <= V_max} and (from slot 2 on)
    {||v - v_prev|| <= a_max tau}; the total power onto min(P_peak, P_max - P_C - P_fly) (both
    reported in ``info``). The **safety layer** (``safety_layer``; default on in "compact" and
    "velocity", off in "full") then (1) blends the velocity toward a homing command just enough
    that q_F stays reachable in the remaining slots under the speed and acceleration limits
    (closed form, :mod:`secure_env.core.safety`), (2) caps every subcarrier's power at the
    leakage limit at the serving position (C7), (3) in the compact mode reserves the R_min pace
    guard's subcarriers before the agent's shares. With it on no action sequence can leak or miss
    q_F (tested over adversarial actions). A NaN, inf or wrongly shaped action raises ``ValueError``.

    ## Observation space
    ``Box(-10, 10, (12 + 3K,), float32)``, lengths divided by L = max(||qF - q0||, V_max tau):
    UAV position relative to q0 (2), velocity / V_max (2), slots left / N (1), offset to qF (2),
    reach margin (slots left V_max tau - ||qF - q||) / L (1), offset to the eavesdropper estimate
    (2), r_E / L (1), log10 of the whole-band leakage cap N_F gamma_tol d_E,min^2 / gamma0 at the
    current position over P_peak (1); then the offset to each user (2K) and each user's delivered
    bits over N tau R_min, capped at 1 (K; 1 when R_min = 0). The "compact" and "velocity" modes
    add 6 features (:func:`secure_env.core.uav_actions.layout_features`): offsets to the nearest
    user, to the users' centroid and to the user furthest behind its R_min pace. This is
    ``observation_mode="flat"`` (the default): its entries depend on the order of the users and
    its size on K.

    ``observation_mode="set"``: ``Box(-10, 10, (G + M W,), float32)``, global features then
    M = ``max_users`` (default K) user tokens of W = 7 entries (:mod:`secure_env.core.tokens`):

    * global (G = 13 in "full", 19 in "compact" and "velocity"): the 12 geometry features above
      (the eavesdropper disc's offset and radius among them), in the learnable modes the 6
      layout features (a tie for the user furthest behind goes to the nearest user, not to the
      first in order), then K / M;
    * token k < K, user k: offset from the UAV (x, y) / L, horizontal distance / L, delivered
      bits over N tau R_min capped at 1, R_min pace debt after the next slot over N tau R_min
      clipped to [-1, 1], clearance from the eavesdropper disc (||u_k - w_E|| - r_E) / L, mask 1;
    * tokens K..M-1: padding, every entry 0 (mask 0).

    The mask is the last entry of every token, so another token group (one per eavesdropper disc)
    can follow the user tokens. Permuting ``user_xy`` permutes the tokens and changes nothing
    else; ``env.observation_layout`` gives (G, W, M) for an order-free encoder
    (``agents.encoders.UserSetExtractor``).

    ## Several and uncertain eavesdroppers, any number of users (extension)
    ``eve_discs`` (J discs) or ``random_eves`` (J = ``num_eves`` discs drawn per reset): the cap and
    the leakage are the worst case over every disc; the flat observation's disc features are the
    binding disc's; the set observation appends one token per disc
    (:func:`secure_env.core.tokens.disc_tokens`). Each eavesdropper's true position is drawn in its
    disc at reset (reported through ``realised_*`` episode metrics only). ``num_users_range``
    draws k users per episode: spaces sized for K = ``num_users``, absent users' action entries
    ignored and their observation entries zero, with a K-entry mask at the end of the flat
    observation. Details: ``docs/envs/uav_secure_ofdma.md``.

    ## Reward
    ``(EE_n - EE_{n-1}) / 1000 - leakage_penalty (leakage_excess + power_excess)``, where EE_n is
    total bits / total energy of slots 1..n (EE_0 = 0), ``leakage_excess`` the relative excess of
    the slot's worst subcarrier leakage over gamma_tol (0 within a relative 1e-5) and
    ``power_excess`` that of the total power over P_max. The last step also subtracts
    ``qos_penalty * sum_k [1 - R_k / R_min]^+`` (R_k the mission-average rate; C6 is a mission
    constraint) and ``destination_penalty * ||q[N] - qF|| / (V_max tau)``. The EE terms telescope,
    so with no discount the return is exactly the paper's objective in kbit/J minus the penalties;
    a feasible plan (no penalty) is ranked by its return exactly as by eq. (9).

    ## Starting state
    The UAV hovers at q0 with no previous velocity (the first slot's velocity is bounded by
    V_max only). Users are at ``user_xy`` (the paper's layout: every episode is the same
    layout), or, with ``random_users=True``, drawn uniformly in ``user_area_xy`` at each reset from
    the env's seeded generator, so that seeds mean different layouts (baselines plan each one).

    ## Episode end
    Terminates after N slots (time left is part of the observation, so the end is part of the
    MDP). ``final_position_error_m`` reports how far q[N] is from qF. ``step`` before the first
    ``reset`` or after the episode ended raises ``RuntimeError``.

    ## Info
    Every step: ``bits``, ``bits_per_user`` (K,), ``energy_j``, ``flight_power_w``,
    ``transmit_power_w``, ``leakage_snr_max``, ``leakage_violation`` (bool),
    ``velocity_projected``, ``power_projected``, ``position_m``, ``velocity_mps``; the safety
    layer's report ``safety_acted``, ``safety_velocity_blend`` (0: command kept, 1: homing
    command), ``safety_velocity_change_mps``, ``safety_power_cut_w``,
    ``safety_reserved_subcarriers`` (R_min pace guard); ``cost`` (sum of
    the non-negative violations ``cost_leakage``, ``cost_power``, ``cost_qos``,
    ``cost_destination``, for safe RL). At the last step ``episode_metrics``:
    ``energy_efficiency_bits_per_joule``, ``min_rate_shortfall_bps`` (largest R_min - R_k, >= 0),
    ``min_user_rate_bps``, ``final_position_error_m``, ``destination_reached``,
    ``leakage_violations`` (slots), ``power_violations`` (slots), ``total_bits``, ``total_energy_j``,
    ``secrecy_rate_bps`` and ``realised_secrecy_rate_bps`` (mission-average secrecy rate against the
    worst case and against the true eavesdroppers), ``realised_leakage_snr_max``,
    ``worst_case_leakage_snr_max``. ``peak_subcarrier_power_w`` every step.

    ## Arguments
    ``gym.make("secure_env/UavSecureOfdma-v0", **kw)`` with any field of
    :class:`~secure_env.scenarios.UavOfdmaScenario` (``num_users``, ``num_subcarriers``,
    ``num_slots``, ``slot_s``, ``peak_power_w``, ``eve_radius_m``, ``gamma_tol``, ``user_xy``,
    ``eve_xy``, ``start_xy``, ``end_xy``, ``random_users``, ``action_mode``, ``observation_mode``,
    ``max_users``, ...) or ``scenario=`` a preset name,
    scenario or dict. Invalid values raise ``ValueError`` naming the field.
    """

    #: render_fps: a power of two, so that gymnasium's RecordVideo (through moviepy's ImageSequenceClip,
    #: which times frame i at i / fps in floating point) writes every frame, in order (issue 18)
    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}
    #: the episode metric scoreboards rank by (a key of ``info["episode_metrics"]``)
    primary_metric = "energy_efficiency_bits_per_joule"

    def __init__(self, render_mode: str | None = None,
                 scenario: str | UavOfdmaScenario | dict[str, Any] | None = None,
                 **overrides: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is invalid: expected one of "
                             f"{self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        s = scenario_from(scenario or "cai2019", "cai2019", overrides)
        if not isinstance(s, UavOfdmaScenario):
            raise ValueError(f"scenario must be a cai2019 (UavOfdmaScenario) scenario, got {type(s).__name__}")
        self.scenario: UavOfdmaScenario = s
        self.constants = model.SlotConstants.from_scenario(s)
        self._base_constants = self.constants      # K = the most users; self.constants has the episode's K
        self._k_constants = {s.num_users: self.constants}
        self._variable_k = s.num_users_range is not None
        k, nf = s.num_users, s.num_subcarriers
        self._mode = s.action_mode
        self._safety = uav_actions.safety_default(s.action_mode, s.safety_layer)
        qkd = bool(getattr(s, "qkd_enabled", None) is not None)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(uav_actions.action_size(s.action_mode, k, nf, qkd),),
                                       dtype=np.float32)
        self._layout_obs = s.action_mode != "full"
        self._set_obs = s.observation_mode == "set"
        self._tokens = s.user_tokens
        if self._set_obs:
            lay = tokens.set_layout(s)
            size = lay["global_dim"] + lay["num_tokens"] * lay["token_dim"] + s.eve_tokens * tokens.EVE_TOKEN_WIDTH
        else:
            size = 12 + 3 * k + (uav_actions.LAYOUT_FEATURES if self._layout_obs else 0)
            size += k if self._variable_k else 0            # the user mask
        self.observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, shape=(size,), dtype=np.float32)
        self._scale = max(s.trip_m, s.v_max_mps * s.slot_s)
        self._start = np.asarray(s.start_xy, dtype=np.float64)
        self._end = np.asarray(s.end_xy, dtype=np.float64)
        self._set_users(model.sample_users(np.random.default_rng(0), s), s.user_range[1])
        self._set_eves(model.sample_eves(np.random.default_rng(0), s), np.asarray(s.eavesdroppers)[:, :2])
        self._need = s.num_slots * s.slot_s * s.r_min_bps
        # each slot's powers and users, for the episode's realised secrecy (rows overwritten per episode)
        self._served_power = np.zeros((s.num_slots, nf))
        self._served_user = np.zeros((s.num_slots, nf), dtype=np.int64)
        self._served_snr = np.ones((s.num_slots, nf))        # 1 + p g of every subcarrier
        self._reset_state()
        self._needs_reset = True      # step() before the first reset() is an error

    def _set_users(self, users: np.ndarray, k: int) -> None:
        """This episode's users: the first ``k`` of the K drawn (``num_users_range``: k varies per
        episode; the physics then runs on the k users with constants of K = k)."""
        self._users = users[:k]
        self._user_list = [tuple(u) for u in self._users.tolist()]
        self.constants = self._constants_for(k)

    def _active_action(self, a: np.ndarray) -> np.ndarray:
        """:func:`active_action` of this episode's k users."""
        s = self.scenario
        return active_action(a, self._mode, len(self._users), s.num_users, s.num_subcarriers)

    def _set_eves(self, eves: np.ndarray, truth: np.ndarray) -> None:
        """This episode's eavesdropper discs (J, 3) and their true positions (J, 2)."""
        self._eves = eves
        self._eve_tuple = tuple(tuple(d) for d in eves.tolist())     # floats: the one-env fast path
        self._eve_arg = self._eve_tuple
        self._eve_truth = truth

    def _reset_state(self) -> None:
        k = len(self._users)
        self._qx, self._qy = float(self._start[0]), float(self._start[1])
        self._vx, self._vy = 0.0, 0.0
        self._slot = 0
        self._bits_user = np.zeros(k)
        self._bits = 0.0
        self._secure = 0.0
        self._energy = 0.0
        self._ee = 0.0
        self._leak_violations = 0
        self._power_violations = 0
        self._path = [(self._qx, self._qy)]
        self._tx_power: list[float] = []

    # -- hooks for envs built on this one (QuantumUav-v0) ------------------------------------
    def _slot_extra(self, qkd_budget_s: np.ndarray | None, qx: float, qy: float,
                    out: dict[str, Any], qkd_phase: dict[str, np.ndarray] | None = None) -> dict[str, Any] | None:
        """A subclass's extra stage of the slot: None here (all data bits count, no extra energy)."""
        return None

    def _episode_extra(self, secure_ee: float) -> dict[str, float]:
        return {}

    # -- planner interface -------------------------------------------------------------------
    def geometry(self) -> dict[str, np.ndarray]:
        """Copies of this episode's layout: ``user_xy`` (K, 2), ``eve_discs`` (J, 3) of (x, y, r_E),
        ``eve_xy`` (the first disc's centre, (2,)), ``eve_truth_xy`` (J, 2) the eavesdroppers' true
        positions (drawn in their discs; never used by the objective or the constraints),
        ``start_xy``, ``end_xy``."""
        return {"user_xy": self._users.copy(), "eve_discs": self._eves.copy(), "eve_xy": self._eves[0, :2].copy(),
                "eve_truth_xy": self._eve_truth.copy(), "start_xy": self._start.copy(), "end_xy": self._end.copy()}

    def layout_scenario(self) -> UavOfdmaScenario:
        """The scenario of this episode's layout, for planners: the drawn users and eavesdropper
        discs written in as fixed values (``random_users``/``random_eves`` off); the scenario
        itself when nothing is drawn."""
        return model.fixed_layout(self.scenario, self._users, self._eves)

    def set_layout(self, user_xy: Any, eve_discs: Any = None) -> np.ndarray:
        """Replace this episode's layout before its first step: ``user_xy`` (k, 2) with k within
        ``num_users_range`` (K without it) and, where given, ``eve_discs`` (J, 3) with the scenario's
        J (their true positions are drawn again, in the new discs). Returns the new observation.
        For flying a policy over a layout another env drew (e.g. ``env.geometry()``)."""
        if self._needs_reset or self._slot != 0:
            raise RuntimeError("set_layout() is for the start of an episode: call reset() first")
        s = self.scenario
        users = np.asarray(user_xy, dtype=np.float64).reshape(-1, 2)
        lo, hi = s.user_range
        if not lo <= len(users) <= hi or not np.isfinite(users).all():
            raise ValueError(f"user_xy has {len(users)} finite points; expected {lo}..{hi}" if lo < hi
                             else f"user_xy has {len(users)} finite points; expected {hi}")
        padded = np.zeros((hi, 2))
        padded[:len(users)] = users
        self._set_users(padded, len(users))
        if eve_discs is not None:
            eves = np.asarray(eve_discs, dtype=np.float64).reshape(-1, 3)
            if len(eves) != s.num_eve_discs or not np.isfinite(eves).all() or np.any(eves[:, 2] < 0):
                raise ValueError(f"eve_discs must hold {s.num_eve_discs} finite (x, y, r >= 0) discs, got {eves.tolist()}")
            self._set_eves(eves, model.sample_eve_truth(self.np_random, eves))
        self._reset_state()
        return self._obs()

    @property
    def observation_layout(self) -> dict[str, int] | None:
        """The set observation's layout, ``global_dim``, ``token_dim`` and ``num_tokens`` (the
        keyword arguments of ``agents.encoders.UserSetExtractor``); None in the flat mode."""
        return tokens.set_layout(self.scenario) if self._set_obs else None

    @property
    def slot_index(self) -> int:
        """Number of slots played so far in this episode (the next action acts on slot index+1)."""
        return self._slot

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        s = self.scenario
        users = model.sample_users(self.np_random, s)
        lo, hi = s.user_range
        self._set_users(users, int(self.np_random.integers(lo, hi + 1)) if self._variable_k else hi)
        eves = model.sample_eves(self.np_random, self.scenario)
        self._set_eves(eves, model.sample_eve_truth(self.np_random, eves))
        self._reset_state()
        self._needs_reset = False
        info = {"position_m": np.array((self._qx, self._qy)), "user_xy": self._users.copy(),
                "eve_discs": self._eves.copy()}
        if self._variable_k:        # one shape for every episode: K rows, a mask of the present users
            info["user_xy"] = _pad_users(self._users, s.num_users)
            info["user_mask"] = np.arange(s.num_users) < len(self._users)
        return self._obs(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s, c = self.scenario, self.constants
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self._slot >= s.num_slots:
            raise RuntimeError("step() called after the episode ended; call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape}")
        if not np.isfinite(a).all():
            raise ValueError("action contains NaN or inf")
        if self._variable_k:
            a = self._active_action(a)
        d = uav_actions.decide_slot(a, self._mode, self._safety, c, s, self._slot_state())
        vx, vy, qx, qy, power, user = d["vx"], d["vy"], d["qx"], d["qy"], d["power_w"], d["user"]
        out = model.slot_outcome_xy(qx, qy, d["speed"], power, user, self._users, c, flight_w=d["flight_w"],
                                    snr_per_watt=d["snr_per_watt"], eves=self._eve_tuple,
                                    eve_distance_sq=d["eve_distance_sq"])
        extra = self._slot_extra(d["qkd_budget_s"], qx, qy, out, d["qkd_phase"])   # subclasses: a QKD phase before the data

        self._qx, self._qy, self._vx, self._vy = qx, qy, vx, vy
        self._slot += 1
        bits = out["bits"]
        reward, energy, leak, pexc, extra_cost = self._add_slot(out, extra)
        self._path.append((qx, qy))
        self._tx_power.append(out["transmit_power_w"])
        self._served_power[self._slot - 1] = power
        self._served_user[self._slot - 1] = user
        self._served_snr[self._slot - 1] = out["one_plus_snr"]
        info: dict[str, Any] = {
            "bits": bits,
            "bits_per_user": out["bits_per_user"],
            "energy_j": energy,
            "flight_power_w": out["flight_power_w"],
            "transmit_power_w": out["transmit_power_w"],
            "leakage_snr_max": out["leakage_snr_max"],
            "peak_subcarrier_power_w": out["peak_subcarrier_power_w"],
            "leakage_violation": leak > 0.0,
            "velocity_projected": d["velocity_projected"],
            "power_projected": d["power_projected"],
            "safety_acted": d["safety_acted"],
            "safety_velocity_blend": d["safety_velocity_blend"],
            "safety_velocity_change_mps": d["safety_velocity_change_mps"],
            "safety_power_cut_w": d["safety_power_cut_w"],
            "safety_reserved_subcarriers": d["safety_reserved_subcarriers"],
            "position_m": np.array((qx, qy)),
            "velocity_mps": np.array((vx, vy)),
            "cost_leakage": leak,
            "cost_power": pexc,
            "cost_qos": 0.0,
            "cost_destination": 0.0,
        }
        if extra is not None:
            info.update(extra["info"])
        if self._variable_k and len(self._users) < s.num_users:
            for key in PER_USER_INFO:
                if key in info:
                    info[key] = _pad_users(info[key], s.num_users)
        terminated = self._slot >= s.num_slots
        if terminated:
            rates = self._bits_user / (self._slot * c.slot_s)
            shortfall = np.maximum(s.r_min_bps - rates, 0.0)
            qos = float(np.sum(shortfall) / s.r_min_bps) if s.r_min_bps > 0 else 0.0
            err = math.hypot(qx - self._end[0], qy - self._end[1])
            dest = err / (c.v_max_mps * c.slot_s)
            reward -= s.qos_penalty * qos + s.destination_penalty * dest
            info["cost_qos"], info["cost_destination"] = qos, dest
            info["episode_metrics"] = {
                "energy_efficiency_bits_per_joule": energy_efficiency_scalar(self._bits, self._energy),
                "min_rate_shortfall_bps": float(shortfall.max()),
                "min_user_rate_bps": float(rates.min()),
                "final_position_error_m": err,
                "destination_reached": float(err <= DESTINATION_TOL_M),
                "leakage_violations": float(self._leak_violations),
                "power_violations": float(self._power_violations),
                "total_bits": self._bits,
                "total_energy_j": self._energy,
            }
            info["episode_metrics"].update(self._secrecy_metrics())
            if extra is not None:
                info["episode_metrics"].update(self._episode_extra(self._ee))
        info["cost"] = (info["cost_leakage"] + info["cost_power"] + info["cost_qos"] + info["cost_destination"]
                        + extra_cost)
        return self._obs(), float(reward), terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from secure_env.envs.rendering import render_uav_ofdma

        return render_uav_ofdma(self.scenario, self._users, np.asarray(self._path, dtype=np.float64),
                                np.asarray(self._tx_power), self._eves, self._eve_truth)

    # -- helpers -----------------------------------------------------------------------------
    def _secrecy_metrics(self) -> dict[str, float]:
        """The mission's secrecy against the worst case and the true eavesdroppers (reported only),
        from the slots flown: :func:`secure_env.core.uav_ofdma.episode_secrecy` over the slot axis."""
        path = np.asarray(self._path[1:], dtype=np.float64)
        return model.episode_secrecy(path[:, 0], path[:, 1], self._served_power, self._served_user, self._users,
                                     self._eves, self._eve_truth, self.constants, served=self._served_snr)

    def _obs(self) -> np.ndarray:
        if self._set_obs:
            return self._set_observation()
        s, c = self.scenario, self.constants
        inv = 1.0 / self._scale
        qx, qy = self._qx, self._qy
        state = self._slot_state()
        obs = model.observation_features(c, self._scale, s.start_xy, s.end_xy, s.num_slots, state)
        for ux, uy in self._user_list:
            obs.append((ux - qx) * inv)
            obs.append((uy - qy) * inv)
        absent = s.num_users - len(self._user_list)     # num_users_range: users k..K-1 are absent (zeros)
        if absent:
            obs.extend([0.0] * (2 * absent))
        if self._need > 0:
            obs.extend(min(b / self._need, 1.0) for b in self._bits_user.tolist())
        else:
            obs.extend([1.0] * len(self._user_list))
        if absent:
            obs.extend([0.0] * absent)
        if self._layout_obs:
            obs.extend(uav_actions.layout_features(state, s, self._scale).tolist())
        if self._variable_k:
            obs.extend([1.0] * len(self._user_list) + [0.0] * absent)
        out = np.array(obs)        # clipped to +-OBS_LIMIT (NaN to -OBS_LIMIT), then float32
        np.fmax(out, -OBS_LIMIT, out=out)
        np.fmin(out, OBS_LIMIT, out=out)
        return out.astype(np.float32)

    def _set_observation(self) -> np.ndarray:
        """``observation_mode="set"``: global features then the user tokens (see the docstring)."""
        s, c = self.scenario, self.constants
        qx, qy = self._qx, self._qy
        state = self._slot_state()
        feats = model.observation_features(c, self._scale, s.start_xy, s.end_xy, s.num_slots, state)
        if self._layout_obs:
            feats.extend(uav_actions.layout_features(state, s, self._scale, order_free=True).tolist())
        feats.append(len(self._users) / self._tokens)
        toks = tokens.user_tokens(state, s, self._scale, self._tokens)
        parts = [np.array(feats), toks.ravel()]
        if s.eve_tokens:
            parts.append(tokens.disc_tokens(qx, qy, self._eves, self._scale).ravel())
        obs = np.concatenate(parts)
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)


#: per-subcarrier (..., N_F) entries of a slot's decision and outcome (never padded to K users)
PER_SUBCARRIER = ("power_w", "user", "one_plus_snr")


class UavSecureOfdmaVectorEnv(_MissionTotals, BatchedEnv):
    """B copies of :class:`~secure_env.envs.uav_ofdma.UavSecureOfdmaEnv` in one set of arrays.

    Drawn eavesdropper discs are per sub-env arrays (B, J, 3). With ``num_users_range`` the
    sub-envs hold K user rows (absent users zero) and play each slot by groups of equal k
    (:meth:`_play_groups`), each group through the single env's functions with constants of K = k,
    so that every sub-env equals a single env of the same seed."""

    single_env_cls = UavSecureOfdmaEnv

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs, **kwargs)
        t = self._template
        self._variable_k = t._variable_k
        self._base_constants = t._base_constants
        self._k_constants = {t.scenario.num_users: t._base_constants}
        self.constants = t._base_constants
        self._scale = t._scale
        self._mode, self._safety, self._layout_obs = t._mode, t._safety, t._layout_obs
        self._set_obs, self._tokens = t._set_obs, t._tokens

    @property
    def observation_layout(self) -> dict[str, int] | None:
        """The single env's :attr:`~UavSecureOfdmaEnv.observation_layout` (None in the flat mode)."""
        return self._template.observation_layout

    def _allocate(self) -> None:
        s = self.scenario
        b, k, j = self.num_envs, s.num_users, s.num_eve_discs
        self._users = np.zeros((b, k, 2))
        self._k = np.full(b, k, dtype=np.int64)          # users present (num_users_range: drawn per episode)
        self._eves = np.zeros((b, j, 3))
        self._eve_truth = np.zeros((b, j, 2))
        self._eve_arg = self._eves                      # the discs every slot reads (drawn in place)
        self._secrecy_sums = np.zeros((b, 2))          # worst-case and realised secrecy rate, summed over slots
        self._secrecy_max = np.zeros((b, 2))           # realised and worst-case leakage SNR, largest over slots
        self._qx, self._qy = np.zeros(b), np.zeros(b)
        self._vx, self._vy = np.zeros(b), np.zeros(b)
        self._slot = np.zeros(b, dtype=np.int64)
        self._bits_user = np.zeros((b, k))
        self._bits, self._secure, self._energy, self._ee = (np.zeros(b) for _ in range(4))
        self._leak_violations = np.zeros(b, dtype=np.int64)
        self._power_violations = np.zeros(b, dtype=np.int64)
        if self.render_mode is not None:     # the path so far and each slot's transmit power, to draw
            self._path = np.zeros((b, s.num_slots + 1, 2))
            self._tx = np.zeros((b, s.num_slots))

    def _draw(self, i: int) -> None:
        # the single env's draws, in its order (users, their number, discs, the truth from a jumped copy)
        s = self.scenario
        users = model.sample_users(self._rngs[i], s)
        if self._variable_k:
            lo, hi = s.user_range
            self._k[i] = int(self._rngs[i].integers(lo, hi + 1))
            users[self._k[i]:] = 0.0                     # absent users: zero rows (masked everywhere)
        self._users[i] = users
        self._eves[i] = model.sample_eves(self._rngs[i], self.scenario)
        self._eve_truth[i] = model.sample_eve_truth(self._rngs[i], self._eves[i])

    def _clear(self, idx: np.ndarray) -> None:
        s = self.scenario
        self._qx[idx], self._qy[idx] = s.start_xy
        self._vx[idx] = self._vy[idx] = 0.0
        self._slot[idx] = 0
        self._bits_user[idx] = 0.0
        self._bits[idx] = self._secure[idx] = self._energy[idx] = self._ee[idx] = 0.0
        self._leak_violations[idx] = self._power_violations[idx] = 0
        self._secrecy_sums[idx] = 0.0
        self._secrecy_max[idx] = 0.0
        if self.render_mode is not None:
            self._path[idx, 0] = s.start_xy

    def _reset_info(self) -> dict[str, Any]:
        info = {"position_m": np.stack([self._qx, self._qy], axis=1), "user_xy": self._users.copy(),
                "eve_discs": self._eves.copy()}
        if self._variable_k:
            info["user_mask"] = self._user_mask()
        return info

    # -- num_users_range: sub-envs grouped by their number of users --------------------------
    def _user_mask(self) -> np.ndarray:
        """(B, K) True where a user is present."""
        return np.arange(self.scenario.num_users) < self._k[:, None]

    def _groups(self) -> list[tuple[int, np.ndarray]]:
        """(k, sub-env indices) for each number of users k in the batch (``num_users_range``)."""
        return [(int(k), np.flatnonzero(self._k == k)) for k in np.unique(self._k)]

    def _group_state(self, idx: np.ndarray, k: int) -> model.SlotState:
        """The :class:`~secure_env.core.uav_ofdma.SlotState` of sub-envs ``idx``, all with k users."""
        return model.SlotState(self._qx[idx], self._qy[idx], self._vx[idx], self._vy[idx], self._slot[idx],
                               self._users[idx, :k], self._bits_user[idx, :k], self._eves[idx])

    def _merge(self, parts: list[tuple[np.ndarray, dict[str, Any]]]) -> dict[str, Any]:
        """One dict of (B, ...) arrays from the groups' dicts: per-user entries (2-D or more, but
        the per-subcarrier ``power_w``, ``user`` and ``one_plus_snr``) padded with zeros to K columns."""
        b, k_max = self.num_envs, self.scenario.num_users
        merged: dict[str, Any] = {}
        for key, first in parts[0][1].items():
            if first is None:
                merged[key] = None
                continue
            if isinstance(first, dict):
                merged[key] = self._merge([(idx, p[key]) for idx, p in parts])
                continue
            arrs = [np.asarray(p[key]) for _, p in parts]
            per_user = arrs[0].ndim >= 2 and key not in PER_SUBCARRIER
            tail = ((k_max,) + arrs[0].shape[2:]) if per_user else arrs[0].shape[1:]
            full = np.zeros((b,) + tail, dtype=np.result_type(*arrs))
            for (idx, _), arr in zip(parts, arrs):
                if per_user:
                    full[idx, :arr.shape[1]] = arr
                else:
                    full[idx] = arr
            merged[key] = full
        return merged

    def _play_groups(self, a: np.ndarray) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """``num_users_range``: each group of sub-envs with the same k plays its slot through the
        single env's functions with constants of K = k (the single env's arithmetic), merged."""
        s = self.scenario
        parts_d, parts_out, parts_extra = [], [], []
        for k, idx in self._groups():
            c = self._constants_for(k)
            st = self._group_state(idx, k)
            ak = active_action(a[idx], self._mode, k, s.num_users, s.num_subcarriers)
            d = uav_actions.decide_slot(ak, self._mode, self._safety, c, s, st)
            out = model.slot_outcome_xy(d["qx"], d["qy"], d["speed"], d["power_w"], d["user"], st.users, c,
                                        flight_w=d["flight_w"], snr_per_watt=d["snr_per_watt"], eves=st.eves,
                                        eve_distance_sq=d["eve_distance_sq"])
            self._add_secrecy(d["qx"], d["qy"], d["power_w"], d["user"], out, idx, c)
            res = self._extra_physics(c, st.users, d["qkd_budget_s"], d["qx"], d["qy"], out, d["qkd_phase"])
            parts_d.append((idx, d))
            parts_out.append((idx, out))
            parts_extra.append((idx, res))
        d, out = self._merge(parts_d), self._merge(parts_out)
        extra = None if parts_extra[0][1] is None else self._extra_book(self._merge(parts_extra))
        return d, out, extra

    # subclasses (QuantumUav) extend these
    def _extra_physics(self, c: model.SlotConstants, users: np.ndarray, qkd_budget_s: np.ndarray | None,
                       qx: np.ndarray, qy: np.ndarray, out: dict[str, Any],
                       qkd_phase: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
        """A subclass's extra stage of the slot for sub-envs of one user count: None here."""
        return None

    def _extra_book(self, res: dict[str, Any]) -> dict[str, Any]:
        """A subclass's running totals of its extra stage (every sub-env)."""
        return res

    def _slot_extra(self, qkd_budget_s: np.ndarray | None, qx: np.ndarray, qy: np.ndarray,
                    out: dict[str, Any], qkd_phase: dict[str, np.ndarray] | None = None) -> dict[str, Any] | None:
        res = self._extra_physics(self.constants, self._users, qkd_budget_s, qx, qy, out, qkd_phase)
        return None if res is None else self._extra_book(res)

    def _episode_extra(self, ee: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def _obs(self) -> np.ndarray:
        if self._set_obs:
            return self._set_observation()
        s, c = self.scenario, self.constants
        inv = 1.0 / self._scale
        state = self._slot_state()
        feats = model.observation_features(c, self._scale, s.start_xy, s.end_xy, s.num_slots, state)
        rel = (self._users - np.stack([self._qx, self._qy], axis=1)[:, None, :]) * inv
        need = s.num_slots * s.slot_s * s.r_min_bps
        delivered = np.minimum(self._bits_user / need, 1.0) if need > 0 else np.ones_like(self._bits_user)
        if self._variable_k:                 # absent users: zeros, then the mask at the end
            mask = self._user_mask()
            rel = rel * mask[..., None]
            delivered = np.where(mask, delivered, 0.0)
        parts = [np.stack(feats, axis=1), rel.reshape(self.num_envs, -1), delivered]
        if self._layout_obs:
            parts.append(self._layout_features(state, order_free=False))
        if self._variable_k:
            parts.append(mask.astype(np.float64))
        obs = np.concatenate(parts, axis=1)
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)

    def _set_observation(self) -> np.ndarray:
        """The single env's set observation for every sub-env, (B, G + M W)."""
        s, c = self.scenario, self.constants
        b = self.num_envs
        state = self._slot_state()
        feats = model.observation_features(c, self._scale, s.start_xy, s.end_xy, s.num_slots, state)
        parts = [np.stack(feats, axis=1)]
        if self._layout_obs:
            parts.append(self._layout_features(state, order_free=True))
        parts.append(self._k[:, None] / self._tokens)
        if self._variable_k:                 # each group's k users fill its tokens, the rest is padding
            toks = np.zeros((b, self._tokens, tokens.USER_TOKEN_WIDTH))
            for k, idx in self._groups():
                toks[idx] = tokens.user_tokens(self._group_state(idx, k), s, self._scale, self._tokens)
        else:
            toks = tokens.user_tokens(state, s, self._scale, self._tokens)
        parts.append(toks.reshape(b, -1))
        if s.eve_tokens:
            parts.append(tokens.disc_tokens(self._qx, self._qy, self._eves, self._scale).reshape(b, -1))
        obs = np.concatenate(parts, axis=1)
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)

    def _layout_features(self, state: model.SlotState, order_free: bool) -> np.ndarray:
        """:func:`~secure_env.core.uav_actions.layout_features` of every sub-env (by groups of
        equal k with ``num_users_range``: nearest, centroid and furthest behind among present users)."""
        s = self.scenario
        if not self._variable_k:
            return uav_actions.layout_features(state, s, self._scale, order_free=order_free)
        out = np.zeros((self.num_envs, uav_actions.LAYOUT_FEATURES))
        for k, idx in self._groups():
            out[idx] = uav_actions.layout_features(self._group_state(idx, k), s, self._scale, order_free=order_free)
        return out

    def _render_one(self, i: int) -> np.ndarray:
        from secure_env.envs.rendering import render_uav_ofdma

        n = int(self._slot[i])
        return render_uav_ofdma(self.scenario, self._users[i, :self._k[i]], self._path[i, :n + 1], self._tx[i, :n], self._eves[i],
                                self._eve_truth[i])

    def _add_secrecy(self, qx: np.ndarray, qy: np.ndarray, power: np.ndarray, user: np.ndarray,
                     out: dict[str, Any], idx: Any = slice(None), c: model.SlotConstants | None = None) -> None:
        """Add the slot's worst-case and realised secrecy (reported only) of sub-envs ``idx`` (with
        constants ``c``; default every sub-env) to the running totals, from the slot's outcome
        ``out`` (its 1 + p g per subcarrier and worst-case eavesdropper distance)."""
        c = self.constants if c is None else c
        r = model.realised_secrecy(qx, qy, power, user, None, self._eves[idx], self._eve_truth[idx], c,
                                   served=out["one_plus_snr"], eve_distance_sq=out["eve_distance_sq"])
        self._secrecy_sums[idx, 0] += r["secrecy_rate_bps"]
        self._secrecy_sums[idx, 1] += r["realised_secrecy_rate_bps"]
        self._secrecy_max[idx, 0] = np.maximum(self._secrecy_max[idx, 0], r["realised_leakage_snr_max"])
        self._secrecy_max[idx, 1] = np.maximum(self._secrecy_max[idx, 1], r["leakage_snr_max"])

    def _play(self, a: np.ndarray) -> PlayResult:
        s, c = self.scenario, self.constants
        if self._variable_k:
            d, out, extra = self._play_groups(a)
            vx, vy, qx, qy = d["vx"], d["vy"], d["qx"], d["qy"]
        else:
            d = uav_actions.decide_slot(a, self._mode, self._safety, c, s, self._slot_state())
            vx, vy, qx, qy = d["vx"], d["vy"], d["qx"], d["qy"]
            out = model.slot_outcome_xy(qx, qy, d["speed"], d["power_w"], d["user"], self._users, c,
                                        flight_w=d["flight_w"], snr_per_watt=d["snr_per_watt"], eves=self._eves,
                                        eve_distance_sq=d["eve_distance_sq"])
            self._add_secrecy(qx, qy, d["power_w"], d["user"], out)
            extra = self._slot_extra(d["qkd_budget_s"], qx, qy, out, d["qkd_phase"])

        self._qx, self._qy, self._vx, self._vy = qx, qy, vx, vy
        self._slot += 1
        bits = out["bits"]
        reward, energy, leak, pexc, extra_cost = self._add_slot(out, extra)
        if self.render_mode is not None:
            ar = np.arange(self.num_envs)
            self._path[ar, self._slot, 0], self._path[ar, self._slot, 1] = qx, qy
            self._tx[ar, self._slot - 1] = out["transmit_power_w"]
        zeros = np.zeros(self.num_envs)
        info: dict[str, Any] = {
            "bits": bits, "bits_per_user": out["bits_per_user"], "energy_j": energy,
            "flight_power_w": out["flight_power_w"], "transmit_power_w": out["transmit_power_w"],
            "leakage_snr_max": out["leakage_snr_max"], "peak_subcarrier_power_w": out["peak_subcarrier_power_w"],
            "leakage_violation": leak > 0.0,
            "velocity_projected": d["velocity_projected"], "power_projected": np.asarray(d["power_projected"]),
            "safety_acted": d["safety_acted"], "safety_velocity_blend": np.asarray(d["safety_velocity_blend"]),
            "safety_velocity_change_mps": np.asarray(d["safety_velocity_change_mps"]),
            "safety_power_cut_w": np.asarray(d["safety_power_cut_w"]),
            "safety_reserved_subcarriers": np.asarray(d["safety_reserved_subcarriers"]),
            "position_m": np.stack([qx, qy], axis=1), "velocity_mps": np.stack([vx, vy], axis=1),
            "cost_leakage": leak, "cost_power": pexc, "cost_qos": zeros.copy(), "cost_destination": zeros.copy(),
        }
        if extra is not None:
            info.update(extra["info"])
        terminated = self._slot >= s.num_slots
        metrics = None
        if terminated.any():
            rates = self._bits_user / (np.maximum(self._slot, 1) * c.slot_s)[:, None]
            shortfall = np.maximum(s.r_min_bps - rates, 0.0)
            if self._variable_k:             # the present users only
                mask = self._user_mask()
                shortfall = np.where(mask, shortfall, 0.0)
                rates = np.where(mask, rates, np.inf)
            qos = shortfall.sum(axis=1) / s.r_min_bps if s.r_min_bps > 0 else zeros.copy()
            err = np.hypot(qx - s.end_xy[0], qy - s.end_xy[1])
            dest = err / (c.v_max_mps * c.slot_s)
            reward = reward - np.where(terminated, s.qos_penalty * qos + s.destination_penalty * dest, 0.0)
            info["cost_qos"] = np.where(terminated, qos, 0.0)
            info["cost_destination"] = np.where(terminated, dest, 0.0)
            metrics = {
                "energy_efficiency_bits_per_joule": self._bits / self._energy,
                "min_rate_shortfall_bps": shortfall.max(axis=1), "min_user_rate_bps": rates.min(axis=1),
                "final_position_error_m": err, "destination_reached": (err <= DESTINATION_TOL_M).astype(np.float64),
                "leakage_violations": self._leak_violations.astype(np.float64),
                "power_violations": self._power_violations.astype(np.float64),
                "total_bits": self._bits.copy(), "total_energy_j": self._energy.copy(),
                "secrecy_rate_bps": self._secrecy_sums[:, 0] / np.maximum(self._slot, 1),
                "realised_secrecy_rate_bps": self._secrecy_sums[:, 1] / np.maximum(self._slot, 1),
                "realised_leakage_snr_max": self._secrecy_max[:, 0].copy(),
                "worst_case_leakage_snr_max": self._secrecy_max[:, 1].copy(),
                **self._episode_extra(self._ee),
            }
        info["cost"] = (info["cost_leakage"] + info["cost_power"] + info["cost_qos"] + info["cost_destination"]
                        + extra_cost)
        return reward, terminated, np.zeros(self.num_envs, dtype=bool), info, metrics
