"""QkdNoma-v0: QKD key exchange followed by NOMA data transmission (Yang et al. 2019); the single env
and its native vector env."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from secure_env.core import qkd_noma as model
from secure_env.envs.batched import BatchedEnv, PlayResult
from secure_env.scenarios import QkdNomaScenario, scenario_from

# Observation bound: SNRs from -160 dB to 240 dB stay unclipped.
OBS_LIMIT = 10.0


class QkdNomaEnv(gym.Env):
    """Max-min secure rate of a QKD-assisted NOMA downlink, one frame per step.

    ## Description
    A base station at the centre of a square serves K users. Each frame of length T it first runs
    QKD with every user in turn (user k for t_k = (d_k / c) ceil(8 m / eps_k^2), eq. (8)), then sends
    data to all users together by NOMA with SIC in the remaining t_{K+1} = T - sum_k t_k (eq. (9)).
    A key error rate e_k(eps_k) (eq. (4)) costs user k that fraction of its data, so its secure rate is
    R_k = (t_{K+1}/T)(1 - e_k) r_k (eq. (10)). The goal is the largest minimal R_k. Small eps_k lowers
    the error rate but needs more photons (longer QKD); the NOMA power split trades the users' rates.
    The photon-count ceiling is kept (it is the model) though at these scales one photon costs 1-5 us
    of a 1 s frame, a relative effect below 1e-6. With ``multiple_access="tdma"`` stage 2 is TDMA
    (the paper's benchmark): each user sends alone at P_max for its share of t_{K+1}.

    ## Action space
    ``Box(-1, 1, (2K,), float32)``, decoded by :func:`secure_env.core.qkd_noma.decode_action`:
    ``a[:K]`` sets eps_k = 1e-3 ** ((1 - a_k)/2) (log scale from 1e-3 to 1); ``a[K:]`` are log10
    power weights over 8 decades, w_k = 10^(4 (a_k - 1)), giving the split w / sum(w) of P_max
    (NOMA) or of the data period (TDMA). :func:`~secure_env.core.qkd_noma.encode_action` inverts it.
    A NaN or wrongly shaped action raises ``ValueError``.

    ## Observation space
    ``Box(-10, 10, (2K,), float32)``: for the frame the next action acts on,
    ``(10 log10(h_k P_max / sigma^2) - 40) / 20`` (the full-power SNR, normalised) and
    ``d_k / (area_m / sqrt 2)`` (distance over the half-diagonal) for every user, clipped to [-10, 10].

    ## Reward
    ``min_k R_k / B`` in bit/s/Hz (about 7 at the defaults), so that the return is the mean minimal
    secure spectral efficiency times the number of frames. If the QKD periods overrun the frame
    (sum t_k > T) no data is sent, the frame is flagged infeasible (``info["feasible"] = False``) and
    the reward is ``-(sum t_k - T) / T``: below every feasible frame.

    ## Starting state
    ``reset`` draws K user positions uniformly in the ``area_m`` square (distances clipped at
    ``min_distance_m``), kept for the episode, then the Rayleigh fading of every frame of the
    episode (:func:`secure_env.core.qkd_noma.sample_episode`; drawing it up front lets the native
    vector env reproduce single envs without a per-env draw in ``step``).

    ## Episode end
    Never terminates; truncated after ``frames_per_episode`` frames. Every step draws fresh fading.
    ``step`` before the first ``reset`` or after the episode ended raises ``RuntimeError``.

    ## Info
    After reset and every step: ``channel_gain`` (K,) and ``distance_m`` (K,) of the frame the next
    action acts on. After every step, of the frame just played: ``qkd_time_s`` (K,), ``data_time_s``,
    ``basis_prob`` (K,), ``error_rate`` (K,), ``power_w`` (K,), ``secure_rate_bps`` (K,),
    ``min_secure_rate_bps``, ``feasible`` and ``cost`` (the QKD overrun in s, >= 0, for safe RL).
    At the last step ``episode_metrics``: ``mean_min_secure_rate_bps`` (the paper's objective averaged
    over the episode's frames, infeasible frames counting 0), ``infeasible_frames`` and ``frames``.

    ## Arguments
    ``gym.make("secure_env/QkdNoma-v0", **kw)`` with any field of
    :class:`~secure_env.scenarios.QkdNomaScenario` (``num_users``, ``p_max_dbm``, ``bandwidth_hz``,
    ``noise_dbm``, ``frame_s``, ``photons_m``, ``alpha_beta``, ``area_m``, ``frames_per_episode``,
    ``light_speed_mps``, ``min_distance_m``, ``multiple_access``) or ``scenario=`` a preset name,
    scenario or dict. Invalid values raise ``ValueError`` naming the field.
    """

    #: render_fps: a power of two, so that RecordVideo keeps every frame (see UavSecureOfdmaEnv.metadata)
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    #: the episode metric scoreboards rank by (a key of ``info["episode_metrics"]``)
    primary_metric = "mean_min_secure_rate_bps"

    def __init__(self, render_mode: str | None = None,
                 scenario: str | QkdNomaScenario | dict[str, Any] | None = None,
                 **overrides: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is invalid: expected one of "
                             f"{self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.scenario: QkdNomaScenario = scenario_from(scenario or "yang2019", "yang2019", overrides)
        k = self.scenario.num_users
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2 * k,), dtype=np.float32)
        self.observation_space = spaces.Box(-OBS_LIMIT, OBS_LIMIT, shape=(2 * k,), dtype=np.float32)
        self._positions = np.zeros((k, 2))
        self._distances = np.ones(k)
        self._gains = np.ones(k)
        self._frame = 0
        self._last: dict[str, Any] | None = None
        self._sum_min_rate = 0.0
        self._infeasible = 0
        self._needs_reset = True      # step() before the first reset() is an error

    # -- planner interface -------------------------------------------------------------------
    def current_frame(self) -> dict[str, np.ndarray]:
        """Copies of the frame the next action acts on: ``channel_gain``, ``distance_m``, ``position_m``."""
        return {"channel_gain": self._gains.copy(), "distance_m": self._distances.copy(),
                "position_m": self._positions.copy()}

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._positions, self._distances, self._fading = model.sample_episode(self.np_random, self.scenario)
        self._gains = model.episode_gains(self._fading[0], self._distances)
        self._frame = 0
        self._last = None
        self._sum_min_rate = 0.0
        self._infeasible = 0
        self._needs_reset = False
        return self._obs(), self._frame_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        s = self.scenario
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self._frame >= s.frames_per_episode:
            raise RuntimeError("step() called after the episode ended; call reset()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a.tolist()}")
        eps, split = model.decode_action(a, s.num_users)
        out = model.play_frame(s, self._gains, self._distances, eps, split)
        reward = float(model.frame_reward(s, out))
        info: dict[str, Any] = {
            "qkd_time_s": out["qkd_time_s"],
            "data_time_s": float(out["data_time_s"]),
            "basis_prob": eps,
            "error_rate": out["error_rate"],
            "power_w": out["power_w"],
            "secure_rate_bps": out["secure_rate_bps"],
            "min_secure_rate_bps": float(out["min_secure_rate_bps"]),
            "feasible": bool(out["feasible"]),
            "cost": float(out["qkd_overrun_s"]),
        }
        self._last = {"eps": eps, "split": split, **info}
        self._frame += 1
        self._sum_min_rate += info["min_secure_rate_bps"]
        self._infeasible += int(not info["feasible"])
        truncated = self._frame >= s.frames_per_episode
        if truncated:
            info["episode_metrics"] = {
                "mean_min_secure_rate_bps": self._sum_min_rate / self._frame,
                "infeasible_frames": self._infeasible,
                "frames": self._frame,
            }
        self._gains = model.episode_gains(self._fading[self._frame], self._distances)
        info.update(self._frame_info())
        return self._obs(), reward, False, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from secure_env.envs.rendering import render_qkd_noma

        return render_qkd_noma(self.scenario, self._positions, self._gains, self._last, self._frame)

    # -- helpers -----------------------------------------------------------------------------
    def _frame_info(self) -> dict[str, Any]:
        return {"channel_gain": self._gains.copy(), "distance_m": self._distances.copy()}

    def _obs(self) -> np.ndarray:
        return model.observation(self.scenario, self._gains, self._distances, OBS_LIMIT)


class QkdNomaVectorEnv(BatchedEnv):
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
        pos, dist, fading = model.sample_episode(self._rngs[i], self.scenario)
        self._positions[i], self._distances[i], self._fading[i] = pos, dist, fading

    def _clear(self, idx: np.ndarray) -> None:
        self._frame[idx] = 0
        self._sum[idx] = 0.0
        self._infeasible[idx] = 0
        self._has_last[idx] = False

    def _gains(self) -> np.ndarray:
        return model.episode_gains(self._fading[np.arange(self.num_envs), self._frame], self._distances)

    def _frame_info(self) -> dict[str, Any]:
        return {"channel_gain": self._gains(), "distance_m": self._distances.copy()}

    _reset_info = _frame_info

    def _obs(self) -> np.ndarray:
        return model.observation(self.scenario, self._gains(), self._distances, OBS_LIMIT)

    def _play(self, a: np.ndarray) -> PlayResult:
        s = self.scenario
        eps, split = model.decode_action(a, s.num_users)
        out = model.play_frame(s, self._gains(), self._distances, eps, split)
        reward = model.frame_reward(s, out)
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
        return render_qkd_noma(self.scenario, self._positions[i], self._gains()[i], last, int(self._frame[i]))
