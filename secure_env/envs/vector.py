"""Native batched vector envs: B environments stepped with a handful of numpy calls.

``gymnasium.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")`` returns one of
these. They call the same :mod:`secure_env.core` functions as the single envs, with a leading
batch axis, and reproduce B single envs exactly: sub-env i is seeded with ``seed + i`` (as
gymnasium's SyncVectorEnv does) and draws its random numbers from its own
``numpy.random.Generator`` in the same order as the single env; random draws happen only when a
sub-env resets, so ``step`` has no per-env Python loop except over the sub-envs that just ended.

Autoreset: ``AutoresetMode.SAME_STEP``. When sub-env i ends, the returned observation is already
the first one of its next episode; ``info["final_obs"][i]`` holds the last observation of the
ended episode (mask ``info["_final_obs"]``) and ``info["episode_metrics"]`` its metrics (each an
array over the batch with mask ``info["_episode_metrics"]``). Every other ``info`` key is an array
over the batch for the step just played.
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


class _BatchedEnv(VectorEnv):
    """Shared shell: spaces from a single env, per-sub-env generators, SAME_STEP autoreset."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}
    single_env_cls: type = object

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: expected an integer >= 1")
        self.num_envs = int(num_envs)
        self._template = self.single_env_cls(**kwargs)
        self.scenario = self._template.scenario
        self.single_action_space = self._template.action_space
        self.single_observation_space = self._template.observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.render_mode = None
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.num_envs)]

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
        info[key] = {k: v for k, v in values.items()}
        info[key].update({f"_{k}": mask.copy() for k in values})
        info[f"_{key}"] = mask.copy()


class QkdNomaVectorEnv(_BatchedEnv):
    """B copies of :class:`~secure_env.envs.qkd_noma.QkdNomaEnv` in one set of arrays."""

    single_env_cls = QkdNomaEnv

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._seed(seed)
        s = self.scenario
        k = s.num_users
        b = self.num_envs
        self._positions = np.zeros((b, k, 2))
        self._distances = np.zeros((b, k))
        self._fading = np.zeros((b, s.frames_per_episode + 1, k))
        for i in range(b):
            self._reset_one(i)
        self._frame = np.zeros(b, dtype=np.int64)
        self._sum = np.zeros(b)
        self._infeasible = np.zeros(b, dtype=np.int64)
        return self._obs(), self._frame_info()

    def _reset_one(self, i: int) -> None:
        pos, dist, fading = qn.sample_episode(self._rngs[i], self.scenario)
        self._positions[i], self._distances[i], self._fading[i] = pos, dist, fading

    def _gains(self) -> np.ndarray:
        return qn.episode_gains(self._fading[np.arange(self.num_envs), self._frame], self._distances)

    def _frame_info(self) -> dict[str, Any]:
        return {"channel_gain": self._gains(), "distance_m": self._distances.copy()}

    def _obs(self) -> np.ndarray:
        return qn.observation(self.scenario, self._gains(), self._distances, QN_OBS_LIMIT)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        s = self.scenario
        a = self._check_action(actions)
        eps, split = qn.decode_action(a, s.num_users)
        out = qn.play_frame(s, self._gains(), self._distances, eps, split)
        reward = qn.frame_reward(s, out)
        info: dict[str, Any] = {
            "qkd_time_s": out["qkd_time_s"], "data_time_s": out["data_time_s"], "basis_prob": eps,
            "error_rate": out["error_rate"], "power_w": out["power_w"],
            "secure_rate_bps": out["secure_rate_bps"], "min_secure_rate_bps": out["min_secure_rate_bps"],
            "feasible": out["feasible"], "cost": out["qkd_overrun_s"],
        }
        self._frame += 1
        self._sum += out["min_secure_rate_bps"]
        self._infeasible += ~out["feasible"]
        truncated = self._frame >= s.frames_per_episode
        terminated = np.zeros(self.num_envs, dtype=bool)
        info.update(self._frame_info())       # the frame each env's next action would act on
        obs = self._obs()
        if truncated.any():
            self._masked({"mean_min_secure_rate_bps": self._sum / self._frame,
                          "infeasible_frames": self._infeasible.astype(np.float64),
                          "frames": self._frame.astype(np.float64)}, truncated, info, "episode_metrics")
            done = np.flatnonzero(truncated)
            final = np.empty(self.num_envs, dtype=object)
            for i in done:
                final[i] = obs[i]
                self._reset_one(int(i))
            self._frame[done] = 0
            self._sum[done] = 0.0
            self._infeasible[done] = 0
            info["final_obs"], info["_final_obs"] = final, truncated.copy()
            obs = self._obs()
        return obs, reward, terminated, truncated, info


class UavSecureOfdmaVectorEnv(_BatchedEnv):
    """B copies of :class:`~secure_env.envs.uav_ofdma.UavSecureOfdmaEnv` in one set of arrays."""

    single_env_cls = UavSecureOfdmaEnv

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs, **kwargs)
        t = self._template
        self.constants = t.constants
        self._scale = t._scale
        self._mode, self._safety, self._layout_obs = t._mode, t._safety, t._layout_obs

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._seed(seed)
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
        self._extra_reset(np.arange(b))
        for i in range(b):
            self._reset_one(i)
        return self._obs(), {"position_m": np.stack([self._qx, self._qy], axis=1), "user_xy": self._users.copy()}

    def _reset_one(self, i: int) -> None:
        s = self.scenario
        self._users[i] = model.sample_users(self._rngs[i], s)
        self._qx[i], self._qy[i] = s.start_xy
        self._vx[i] = self._vy[i] = 0.0
        self._slot[i] = 0
        self._bits_user[i] = 0.0
        self._bits[i] = self._secure[i] = self._energy[i] = self._ee[i] = 0.0
        self._leak_violations[i] = self._power_violations[i] = 0

    # subclasses (QuantumUav) extend these three
    def _extra_reset(self, idx: np.ndarray) -> None:
        pass

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

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        s, c = self.scenario, self.constants
        a = self._check_action(actions)
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
        if terminated.any():
            done = np.flatnonzero(terminated)
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
        obs = self._obs()
        if terminated.any():
            self._masked(metrics, terminated, info, "episode_metrics")
            final = np.empty(self.num_envs, dtype=object)
            for i in done:
                final[i] = obs[i]
            info["final_obs"], info["_final_obs"] = final, terminated.copy()
            for i in done:
                self._reset_one(int(i))
            self._extra_reset(done)
            obs = self._obs()
        return obs, reward, terminated, np.zeros(self.num_envs, dtype=bool), info


class QuantumUavVectorEnv(UavSecureOfdmaVectorEnv):
    """B copies of :class:`~secure_env.envs.quantum_uav.QuantumUavEnv` in one set of arrays."""

    single_env_cls = QuantumUavEnv

    def _extra_reset(self, idx: np.ndarray) -> None:
        if not hasattr(self, "_overrun_slots"):
            self._overrun_slots = np.zeros(self.num_envs, dtype=np.int64)
            self._err_bits = np.zeros(self.num_envs)
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


__all__ = ["QkdNomaVectorEnv", "QuantumUavVectorEnv", "UavSecureOfdmaVectorEnv"]
