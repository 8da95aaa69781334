"""Native batched vector envs: B environments stepped with a handful of numpy calls.

``gymnasium.make_vec(id, num_envs=B)`` returns one of these (every id has a ``vector_entry_point``,
which gymnasium picks when no ``vectorization_mode`` is given). They call the same
:mod:`secure_env.core` functions as the single envs, with a leading batch axis, and reproduce B
single envs exactly: sub-env i is seeded with ``seed + i`` (as gymnasium's SyncVectorEnv does) and
draws its random numbers from its own ``numpy.random.Generator`` in the same order as the single
env; random draws happen only when a sub-env resets, so ``step`` has no per-env Python loop except
over the sub-envs that reset.

Autoreset (``autoreset_mode`` keyword; gymnasium 1.4 passes ``make_vec`` keywords to a vector entry
point and refuses ``vector_kwargs`` there, so it is
``gym.make_vec(id, B, autoreset_mode=AutoresetMode.SAME_STEP)``):

* ``AutoresetMode.NEXT_STEP`` (the default, as gymnasium's own vector envs; its vector wrappers
  need it): the step that ends sub-env i returns its last observation and
  ``info["episode_metrics"]``; the next ``step`` ignores i's action and resets it (its first
  observation, reward 0, terminated and truncated False, its reset ``info``). ``info`` is
  SyncVectorEnv's: every key is an array over the batch with a boolean mask ``info["_key"]`` of
  the sub-envs that have it (rows without it hold 0), ``episode_metrics`` a dict of such arrays.
* ``AutoresetMode.SAME_STEP`` (SB3's convention; :mod:`agents.vec_adapter` asks for it): when
  sub-env i ends, the returned observation is already the first one of its next episode;
  ``info["final_obs"][i]`` holds the last observation of the ended episode (mask
  ``info["_final_obs"]``) and ``info["episode_metrics"]`` its metrics (each an array over the
  batch with mask ``info["_episode_metrics"]``). Every other ``info`` key is an array over the
  batch for the step just played (no masks).

``render_mode="rgb_array"``: ``render()`` returns a tuple of B frames, sub-env i drawn by the
single env's renderer from i's state (as SyncVectorEnv's tuple of its envs' frames).
``step`` before ``reset`` raises ``RuntimeError``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from secure_env.core import qkd_noma as qn
from secure_env.core import quantum_uav as qmodel
from secure_env.core import uav_actions
from secure_env.core import uav_ofdma as model
from secure_env.envs.qkd_noma import OBS_LIMIT as QN_OBS_LIMIT
from secure_env.envs.qkd_noma import QkdNomaEnv
from secure_env.envs.quantum_uav import QuantumUavEnv
from secure_env.envs.uav_ofdma import DESTINATION_TOL_M, EE_UNIT_BITS_PER_J, OBS_LIMIT, UavSecureOfdmaEnv

#: the autoreset modes the native vector envs implement
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]
PlayResult = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], dict[str, np.ndarray] | None]


def as_autoreset_mode(value: Any) -> AutoresetMode:
    """``value`` (an ``AutoresetMode`` or its string value) as a supported ``AutoresetMode``."""
    try:
        mode = AutoresetMode(value)
    except (ValueError, TypeError):
        mode = None
    if mode not in AUTORESET_MODES:
        raise ValueError(f"autoreset_mode={value!r} is invalid: expected one of "
                         f"{list(AUTORESET_MODES)} (or their values {[m.value for m in AUTORESET_MODES]})")
    return mode


def _rows(mask: np.ndarray, ndim: int) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def masked_info(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Gymnasium's vector ``info``: each batch array ``info[key]`` kept on ``rows`` (0 elsewhere)
    with the mask ``_key``; no keys where no row has them."""
    out: dict[str, Any] = {}
    if not rows.any():
        return out
    every = bool(rows.all())
    for key, value in info.items():
        arr = np.asarray(value)
        out[key] = arr if every else np.where(_rows(rows, arr.ndim), arr, np.zeros((), arr.dtype))
        out[f"_{key}"] = rows.copy()
    return out


def merge_reset_info(info: dict[str, Any], reset_info: dict[str, Any], rows: np.ndarray) -> None:
    """Put ``reset_info``'s rows ``rows`` into the masked ``info`` (SyncVectorEnv's info of a step that
    resets some sub-envs: their reset info beside the others' step info)."""
    for key, value in reset_info.items():
        arr = np.asarray(value)
        old = info.get(key, np.zeros_like(arr))
        info[key] = np.where(_rows(rows, arr.ndim), arr, old)
        info[f"_{key}"] = info.get(f"_{key}", np.zeros_like(rows)) | rows


class _BatchedEnv(VectorEnv):
    """Shared shell: spaces from a single env, per-sub-env generators, both autoreset modes, render.

    Subclasses implement the state: ``_allocate`` (arrays for the batch), ``_draw(i)`` (sub-env
    i's random draws at reset), ``_clear(idx)`` (the rest of a reset, vectorised), ``_play``
    (one batched step, no reset), ``_obs``, ``_reset_info`` and ``_render_one(i)``.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    single_env_cls: type = object

    def __init__(self, num_envs: int = 1, *, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 render_mode: str | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or int(num_envs) < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: expected an integer >= 1")
        self.num_envs = int(num_envs)
        self.autoreset_mode = as_autoreset_mode(autoreset_mode)
        self._template = self.single_env_cls(render_mode=render_mode, **kwargs)   # validates both
        self.metadata = {**self._template.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.scenario = self._template.scenario
        self.single_action_space = self._template.action_space
        self.single_observation_space = self._template.observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.num_envs)]
        self._autoreset = np.zeros(self.num_envs, dtype=bool)   # NEXT_STEP: ended, reset at the next step
        self._needs_reset = True

    # -- hooks -------------------------------------------------------------------------------
    def _allocate(self) -> None:
        raise NotImplementedError

    def _draw(self, i: int) -> None:
        raise NotImplementedError

    def _clear(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def _play(self, a: np.ndarray) -> PlayResult:
        """One batched step of every sub-env: reward, terminated, truncated, info (batch arrays)
        and, if any sub-env ended, the episode metrics (batch arrays, valid where it ended)."""
        raise NotImplementedError

    def _obs(self) -> np.ndarray:
        raise NotImplementedError

    def _reset_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _render_one(self, i: int) -> np.ndarray:
        raise NotImplementedError

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._seed(seed)
        self._allocate()
        for i in range(self.num_envs):
            self._draw(i)
        self._clear(np.arange(self.num_envs))
        self._autoreset[:] = False
        self._needs_reset = False
        info = self._reset_info()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            info = masked_info(info, np.ones(self.num_envs, dtype=bool))
        return self._obs(), info

    def step(self, actions: Any) -> StepResult:
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        a = self._check_action(actions)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next(a)
        return self._step_same(a)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per sub-env (``render_mode="rgb_array"``), else None."""
        if self.render_mode is None:
            return None
        if self._needs_reset:
            raise RuntimeError("render() called before reset(); call reset() first")
        return tuple(self._render_one(i) for i in range(self.num_envs))

    # -- autoreset ---------------------------------------------------------------------------
    def _restart(self, idx: np.ndarray) -> None:
        for i in idx:
            self._draw(int(i))
        self._clear(idx)

    def _step_same(self, a: np.ndarray) -> StepResult:
        reward, terminated, truncated, info, metrics = self._play(a)
        done = terminated | truncated
        obs = self._obs()
        if done.any():
            self._masked(metrics or {}, done, info, "episode_metrics")
            idx = np.flatnonzero(done)
            final = np.empty(self.num_envs, dtype=object)
            for i in idx:
                final[i] = obs[i]
            info["final_obs"], info["_final_obs"] = final, done.copy()
            self._restart(idx)
            obs = self._obs()
        return obs, reward, terminated, truncated, info

    def _step_next(self, a: np.ndarray) -> StepResult:
        ended = self._autoreset
        idx = np.flatnonzero(ended)
        if idx.size:
            self._restart(idx)       # the sub-envs that ended at the previous step start again
        reward, terminated, truncated, info, metrics = self._play(a)
        live = ~ended
        if idx.size:
            self._clear(idx)         # ...and this step was not theirs: back to their first state
            reward = np.where(ended, 0.0, reward)
            terminated, truncated = terminated & live, truncated & live
        out = masked_info(info, live)
        if idx.size:
            merge_reset_info(out, self._reset_info(), ended)
        done = terminated | truncated
        if done.any():
            self._masked(metrics or {}, done, out, "episode_metrics")
        self._autoreset = done
        return self._obs(), reward, terminated, truncated, out

    # -- helpers -----------------------------------------------------------------------------
    def _check_action(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        want = (self.num_envs,) + self.single_action_space.shape
        if a.shape != want:
            raise ValueError(f"actions have shape {a.shape}, expected {want}")
        if not np.isfinite(a).all():
            raise ValueError("actions contain NaN or inf")
        return a

    def _seed(self, seed: int | Sequence[int] | None) -> None:
        if seed is None:
            return
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed has {len(seeds)} entries, expected {self.num_envs}")
        # the same Generator a single env builds in reset(seed=s) (gymnasium.utils.seeding)
        from gymnasium.utils import seeding

        self._rngs = [seeding.np_random(int(s))[0] for s in seeds]

    @staticmethod
    def _masked(values: dict[str, np.ndarray], mask: np.ndarray, info: dict[str, Any], key: str) -> None:
        info[key] = masked_info(values, mask)
        info[f"_{key}"] = mask.copy()


class QkdNomaVectorEnv(_BatchedEnv):
    """B copies of :class:`~secure_env.envs.qkd_noma.QkdNomaEnv` in one set of arrays."""

    single_env_cls = QkdNomaEnv

    def _allocate(self) -> None:
        s, b = self.scenario, self.num_envs
        k = s.num_users
        self._positions = np.zeros((b, k, 2))
        self._distances = np.zeros((b, k))
        self._fading = np.zeros((b, s.frames_per_episode + 1, k))
        self._frame = np.zeros(b, dtype=np.int64)
        self._sum = np.zeros(b)
        self._infeasible = np.zeros(b, dtype=np.int64)
        self._has_last = np.zeros(b, dtype=bool)     # render: a frame was played since reset
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _draw(self, i: int) -> None:
        pos, dist, fading = qn.sample_episode(self._rngs[i], self.scenario)
        self._positions[i], self._distances[i], self._fading[i] = pos, dist, fading

    def _clear(self, idx: np.ndarray) -> None:
        self._frame[idx] = 0
        self._sum[idx] = 0.0
        self._infeasible[idx] = 0
        self._has_last[idx] = False

    def _gains(self) -> np.ndarray:
        return qn.episode_gains(self._fading[np.arange(self.num_envs), self._frame], self._distances)

    def _frame_info(self) -> dict[str, Any]:
        return {"channel_gain": self._gains(), "distance_m": self._distances.copy()}

    _reset_info = _frame_info

    def _obs(self) -> np.ndarray:
        return qn.observation(self.scenario, self._gains(), self._distances, QN_OBS_LIMIT)

    def _play(self, a: np.ndarray) -> PlayResult:
        s = self.scenario
        eps, split = qn.decode_action(a, s.num_users)
        out = qn.play_frame(s, self._gains(), self._distances, eps, split)
        reward = qn.frame_reward(s, out)
        info: dict[str, Any] = {
            "qkd_time_s": out["qkd_time_s"], "data_time_s": out["data_time_s"], "basis_prob": eps,
            "error_rate": out["error_rate"], "power_w": out["power_w"],
            "secure_rate_bps": out["secure_rate_bps"], "min_secure_rate_bps": out["min_secure_rate_bps"],
            "feasible": out["feasible"], "cost": out["qkd_overrun_s"],
        }
        self._last = (eps, out["power_w"], out["min_secure_rate_bps"])
        self._has_last[:] = True
        self._frame += 1
        self._sum += out["min_secure_rate_bps"]
        self._infeasible += ~out["feasible"]
        truncated = self._frame >= s.frames_per_episode
        terminated = np.zeros(self.num_envs, dtype=bool)
        info.update(self._frame_info())       # the frame each env's next action would act on
        metrics = None
        if truncated.any():
            metrics = {"mean_min_secure_rate_bps": self._sum / self._frame,
                       "infeasible_frames": self._infeasible.astype(np.float64),
                       "frames": self._frame.astype(np.float64)}
        return reward, terminated, truncated, info, metrics

    def _render_one(self, i: int) -> np.ndarray:
        from secure_env.envs.rendering import render_qkd_noma

        last = None
        if self._has_last[i] and self._last is not None:
            eps, power, min_rate = self._last
            last = {"eps": eps[i], "power_w": power[i], "min_secure_rate_bps": float(min_rate[i])}
        return render_qkd_noma(self.scenario, self._positions[i], self._gains()[i], last)


class UavSecureOfdmaVectorEnv(_BatchedEnv):
    """B copies of :class:`~secure_env.envs.uav_ofdma.UavSecureOfdmaEnv` in one set of arrays."""

    single_env_cls = UavSecureOfdmaEnv

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs, **kwargs)
        t = self._template
        self.constants = t.constants
        self._scale = t._scale
        self._mode, self._safety, self._layout_obs = t._mode, t._safety, t._layout_obs

    def _allocate(self) -> None:
        s = self.scenario
        b, k = self.num_envs, s.num_users
        self._users = np.zeros((b, k, 2))
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
        self._users[i] = model.sample_users(self._rngs[i], self.scenario)

    def _clear(self, idx: np.ndarray) -> None:
        s = self.scenario
        self._qx[idx], self._qy[idx] = s.start_xy
        self._vx[idx] = self._vy[idx] = 0.0
        self._slot[idx] = 0
        self._bits_user[idx] = 0.0
        self._bits[idx] = self._secure[idx] = self._energy[idx] = self._ee[idx] = 0.0
        self._leak_violations[idx] = self._power_violations[idx] = 0
        if self.render_mode is not None:
            self._path[idx, 0] = s.start_xy

    def _reset_info(self) -> dict[str, Any]:
        return {"position_m": np.stack([self._qx, self._qy], axis=1), "user_xy": self._users.copy()}

    # subclasses (QuantumUav) extend these two
    def _slot_extra(self, qkd_budget_s: np.ndarray | None, qx: np.ndarray, qy: np.ndarray,
                    out: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def _episode_extra(self, ee: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def _obs(self) -> np.ndarray:
        s, c = self.scenario, self.constants
        inv = 1.0 / self._scale
        feats = model.observation_features(c, self._scale, s.start_xy, s.end_xy, s.num_slots, self._qx, self._qy,
                                           self._vx, self._vy, s.num_slots - self._slot)
        rel = (self._users - np.stack([self._qx, self._qy], axis=1)[:, None, :]) * inv
        need = s.num_slots * s.slot_s * s.r_min_bps
        delivered = np.minimum(self._bits_user / need, 1.0) if need > 0 else np.ones_like(self._bits_user)
        parts = [np.stack(feats, axis=1), rel.reshape(self.num_envs, -1), delivered]
        if self._layout_obs:
            parts.append(uav_actions.layout_features(self._qx, self._qy, self._users, self._bits_user, self._slot,
                                                     s, self._scale))
        obs = np.concatenate(parts, axis=1)
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)

    def _render_one(self, i: int) -> np.ndarray:
        from secure_env.envs.rendering import render_uav_ofdma

        n = int(self._slot[i])
        return render_uav_ofdma(self.scenario, self._users[i], self._path[i, :n + 1], self._tx[i, :n])

    def _play(self, a: np.ndarray) -> PlayResult:
        s, c = self.scenario, self.constants
        d = uav_actions.decide_slot(a, self._mode, self._safety, c, s, self._qx, self._qy, self._vx, self._vy,
                                    self._slot, self._users, self._bits_user)
        vx, vy, qx, qy = d["vx"], d["vy"], d["qx"], d["qy"]
        out = model.slot_outcome_xy(qx, qy, d["speed"], d["power_w"], d["user"], self._users, c,
                                    flight_w=d["flight_w"])
        extra = self._slot_extra(d["qkd_budget_s"], qx, qy, out)

        self._qx, self._qy, self._vx, self._vy = qx, qy, vx, vy
        self._slot += 1
        bits = out["bits"]
        energy = out["energy_j"] if extra is None else extra["energy_j"]
        self._bits_user += out["bits_per_user"] if extra is None else extra["secure_bits_per_user"]
        self._bits += bits
        self._secure += bits if extra is None else extra["secure_bits"]
        self._energy += energy
        ee = self._secure / self._energy      # ofdma.energy_efficiency_scalar, elementwise
        leak, pexc = out["leakage_excess"], out["power_excess"]
        extra_cost = 0.0 if extra is None else extra["cost"]
        self._leak_violations += leak > 0.0
        self._power_violations += pexc > 0.0
        reward = (ee - self._ee) / EE_UNIT_BITS_PER_J - s.leakage_penalty * (leak + pexc + extra_cost)
        self._ee = ee
        if self.render_mode is not None:
            ar = np.arange(self.num_envs)
            self._path[ar, self._slot, 0], self._path[ar, self._slot, 1] = qx, qy
            self._tx[ar, self._slot - 1] = out["transmit_power_w"]
        zeros = np.zeros(self.num_envs)
        info: dict[str, Any] = {
            "bits": bits, "bits_per_user": out["bits_per_user"], "energy_j": energy,
            "flight_power_w": out["flight_power_w"], "transmit_power_w": out["transmit_power_w"],
            "leakage_snr_max": out["leakage_snr_max"], "leakage_violation": leak > 0.0,
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
                **self._episode_extra(ee),
            }
        info["cost"] = (info["cost_leakage"] + info["cost_power"] + info["cost_qos"] + info["cost_destination"]
                        + extra_cost)
        return reward, terminated, np.zeros(self.num_envs, dtype=bool), info, metrics


class QuantumUavVectorEnv(UavSecureOfdmaVectorEnv):
    """B copies of :class:`~secure_env.envs.quantum_uav.QuantumUavEnv` in one set of arrays."""

    single_env_cls = QuantumUavEnv

    def _allocate(self) -> None:
        super()._allocate()
        self._overrun_slots = np.zeros(self.num_envs, dtype=np.int64)
        self._err_bits = np.zeros(self.num_envs)

    def _clear(self, idx: np.ndarray) -> None:
        super()._clear(idx)
        self._overrun_slots[idx] = 0
        self._err_bits[idx] = 0.0

    def _slot_extra(self, qkd_budget_s: np.ndarray | None, qx: np.ndarray, qy: np.ndarray,
                    out: dict[str, Any]) -> dict[str, Any]:
        res = qmodel.play_qkd_slot(self.scenario, self.constants, qkd_budget_s, qx, qy, self._users, out)
        self._overrun_slots += res["info"]["qkd_overrun_s"] > 0.0
        self._err_bits += res["key_error_bits"]
        return res

    def _episode_extra(self, ee: np.ndarray) -> dict[str, np.ndarray]:
        return {"secure_energy_efficiency_bits_per_joule": ee.copy(),
                "qkd_overrun_slots": self._overrun_slots.astype(np.float64),
                "mean_key_error_rate": np.where(self._bits > 0, self._err_bits / np.maximum(self._bits, 1e-300), 0.0)}


__all__ = ["AUTORESET_MODES", "QkdNomaVectorEnv", "QuantumUavVectorEnv", "UavSecureOfdmaVectorEnv", "as_autoreset_mode"]
