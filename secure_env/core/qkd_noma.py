"""One frame of the QKD-NOMA system of Yang et al. 2019, pure and batched.

A frame of length T opens with QKD for each user k (time t_k, eq. (8)), then data is sent to all
users in the remaining t_{K+1} = T - sum_k t_k by NOMA (eq. (9)) or TDMA. Arrays carry users on the
last axis and any leading batch axes; nothing here touches Gymnasium, so the single env, a vector env
and the baselines all evaluate a frame through :func:`play_frame`.

Action codec (``Box(-1, 1, (2K,))``), documented once here and inverted by :func:`encode_action`:

- ``a[:K]`` -> basis probabilities on a log scale, eps_k = EPS_MIN ** ((1 - a_k) / 2), i.e.
  a = -1 gives EPS_MIN = 1e-3 and a = +1 gives eps = 1. The optimum sits near 0.1, so the log scale
  gives it a fair share of the range (a ~ 0.4).
- ``a[K:]`` -> the stage-2 split as log-weights, w_k = 10 ** (POWER_DECADES (a_k - 1) / 2), split
  = w / sum(w); a spans POWER_DECADES = 8 decades of power ratio, enough for the strong user's
  share of SIC-optimal NOMA powers at any SNR the scenario produces. With NOMA the split is the
  power fraction of P_max (the full budget is always used: Lemma 2 shows that is optimal); with
  TDMA it is each user's share of the data period, sent alone at P_max.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core.channel import channel_gain, rayleigh_power
from secure_env.core.noma import noma_rates, secure_rates, tdma_rates
from secure_env.core.qkd import error_rate, qkd_time

EPS_MIN = 1e-3
POWER_DECADES = 8.0
_LOG_EPS_MIN = float(np.log10(EPS_MIN))


def decode_action(action: ArrayLike, num_users: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Env action(s) (..., 2K) in [-1, 1] -> (eps (..., K), split (..., K) summing to 1).

    Values outside [-1, 1] are clipped (the Box bounds); NaN must be rejected by the caller.
    """
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    eps = np.power(10.0, _LOG_EPS_MIN * (1.0 - a[..., :num_users]) / 2.0)
    logw = POWER_DECADES * (a[..., num_users:] - 1.0) / 2.0
    w = np.power(10.0, logw - logw.max(axis=-1, keepdims=True))
    return eps, w / w.sum(axis=-1, keepdims=True)


def encode_action(eps: ArrayLike, split: ArrayLike) -> NDArray[np.float32]:
    """Inverse of :func:`decode_action` for planners: (eps, split) -> float32 env action.

    Exact (up to float32 rounding) for eps in [EPS_MIN, 1] and split ratios within POWER_DECADES
    of the largest share; values beyond are clipped to the nearest representable action.
    """
    eps = np.asarray(eps, dtype=np.float64)
    split = np.asarray(split, dtype=np.float64)
    with np.errstate(divide="ignore"):
        a_eps = 1.0 - 2.0 * np.log10(eps) / _LOG_EPS_MIN
        w = split / split.max(axis=-1, keepdims=True)
        a_split = 1.0 + 2.0 * np.log10(w) / POWER_DECADES
    a = np.concatenate([a_eps, a_split], axis=-1)
    return np.clip(a, -1.0, 1.0).astype(np.float32)


def sample_user_positions(rng: np.random.Generator, scenario: Any,
                          batch_shape: tuple[int, ...] = ()) -> NDArray[np.float64]:
    """Users uniform in the ``area_m`` square centred on the base station: (..., K, 2) in metres."""
    half = scenario.area_m / 2.0
    return rng.uniform(-half, half, size=(*batch_shape, scenario.num_users, 2))


def user_distances(positions: ArrayLike, scenario: Any) -> NDArray[np.float64]:
    """Base-station-to-user distances (..., K), clipped below at ``min_distance_m``."""
    return np.maximum(np.linalg.norm(np.asarray(positions, dtype=np.float64), axis=-1),
                      scenario.min_distance_m)


def sample_gains(rng: np.random.Generator, distances: ArrayLike) -> NDArray[np.float64]:
    """A fresh block-fading draw for each user: h = Exp(1) * 10^(-L(d)/10)."""
    d = np.asarray(distances, dtype=np.float64)
    return channel_gain(d, rayleigh_power(rng, d.shape))


def sample_drops(rng: np.random.Generator, scenario: Any, batch_shape: tuple[int, ...] = ()
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A drop: user positions, then their distances, then one fading draw, in that order of
    random draws (the env's reset, the reproduction and the benchmarks all use this order).
    Returns (positions (..., K, 2), distances (..., K), gains (..., K))."""
    positions = sample_user_positions(rng, scenario, batch_shape)
    distances = user_distances(positions, scenario)
    return positions, distances, sample_gains(rng, distances)


def sample_episode(rng: np.random.Generator, scenario: Any
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """An episode's randomness in one go, as the envs draw it at reset: user positions, then the
    Rayleigh fading of every frame plus one (the observation after the last frame).
    Returns (positions (K, 2), distances (K,), fading (frames + 1, K))."""
    positions = sample_user_positions(rng, scenario)
    distances = user_distances(positions, scenario)
    fading = rayleigh_power(rng, (scenario.frames_per_episode + 1, scenario.num_users))
    return positions, distances, fading


def episode_gains(fading: ArrayLike, distances: ArrayLike) -> NDArray[np.float64]:
    """Channel gains of a frame from its fading draw (see :func:`sample_episode`)."""
    return channel_gain(distances, fading)


def observation(scenario: Any, gains: ArrayLike, distances: ArrayLike, limit: float) -> NDArray[np.float32]:
    """The QkdNoma-v0 observation (..., 2K): ((10 log10(h P_max / sigma^2) - 40) / 20, d / (area / sqrt 2)),
    clipped to [-limit, limit]."""
    s = scenario
    snr_db = 10.0 * np.log10(np.asarray(gains) * s.p_max_w / s.noise_w)
    d_norm = np.asarray(distances) / (s.area_m / np.sqrt(2.0))
    obs = np.concatenate([(snr_db - 40.0) / 20.0, d_norm], axis=-1)
    return np.clip(obs, -limit, limit).astype(np.float32)


def play_frame(scenario: Any, gains: ArrayLike, distances: ArrayLike, eps: ArrayLike,
               split: ArrayLike) -> dict[str, NDArray[Any]]:
    """Everything that happens in one frame for decoded actions (eps, split).

    Returns arrays (batch shape, plus the user axis where marked (K)):
    ``qkd_time_s`` (K), ``data_time_s``, ``error_rate`` (K), ``power_w`` (K), ``rate_bps`` (K, the
    stage-2 rate before the key error and the time share), ``secure_rate_bps`` (K, eq. (10)),
    ``min_secure_rate_bps``, ``feasible`` (sum of QKD times <= T) and ``qkd_overrun_s`` (>= 0).
    An infeasible frame sends no data, so its secure rates are zero.
    """
    s = scenario
    h = np.asarray(gains, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    split = np.asarray(split, dtype=np.float64)
    t_qkd = qkd_time(eps, distances, s.photons_m, s.light_speed_mps)
    data_time = s.frame_s - t_qkd.sum(axis=-1)
    feasible = data_time >= 0.0
    err = error_rate(eps, s.alpha_beta)
    if s.multiple_access == "noma":
        power = split * s.p_max_w
        rate = noma_rates(h, power, s.noise_w, s.bandwidth_hz)
    else:
        power = np.broadcast_to(s.p_max_w, h.shape).astype(np.float64)
        rate = tdma_rates(h, split, s.p_max_w, s.noise_w, s.bandwidth_hz)
    secure = secure_rates(rate, err, data_time, s.frame_s)
    return {
        "qkd_time_s": t_qkd,
        "data_time_s": data_time,
        "error_rate": err,
        "power_w": power,
        "rate_bps": rate,
        "secure_rate_bps": secure,
        "min_secure_rate_bps": secure.min(axis=-1),
        "feasible": feasible,
        "qkd_overrun_s": np.maximum(-data_time, 0.0),
    }


def frame_reward(scenario: Any, outcome: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
    """Reward of a frame: min secure rate in bit/s/Hz (divided by the bandwidth B) when feasible,
    else minus the QKD overrun as a fraction of T (so any feasible frame beats any infeasible one)."""
    return np.where(outcome["feasible"], outcome["min_secure_rate_bps"] / scenario.bandwidth_hz,
                    -outcome["qkd_overrun_s"] / scenario.frame_s)
