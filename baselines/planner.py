"""Baseline planners wrapped as Stable-Baselines3-style policies.

A policy is built from an env (``Policy(env)``), reads the frame the next action acts on from the
env, plans it with the analytic solver and returns the exact env action through the env's own
encoding. It never computes a reward or a score: the env does.

The planner contract (:class:`BoundEnvs`): a planner plans from the *state* of the env it is bound
to, not from the observation it is shown, so ``predict`` first checks that the observation is the
bound env's current one (recomputed through the env's own observation function, within float32
tolerance) and raises ``ValueError`` otherwise: it never acts silently on a state other than the
one it is shown. A planner binds to one env (``gym.make``, any wrappers that keep the
observation) or to an SB3 ``DummyVecEnv`` / gymnasium ``SyncVectorEnv`` of such envs (optionally
under ``VecMonitor``, ``VecCheckNan`` or ``VecNormalize``, whose normalisation is applied to the
recomputed observation); with a vector env ``predict`` takes and returns a batch, one row per
sub-env. QkdNoma-v0 planners plan every sub-env's frame (Algorithm 1 and TDMA as one batch);
UAV planners plan one episode at a time and refuse a vector env of more than one sub-env.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


#: predict's observation matches the bound env's when every entry is within this relative ...
OBS_RTOL = 1e-5
#: ... or absolute tolerance (float32 rounding of the env's own observation, with a margin)
OBS_ATOL = 1e-6


@runtime_checkable
class Policy(Protocol):
    """The interface shared by trained SB3 models and the baselines."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        ...


def _env_observation(base: Any) -> np.ndarray:
    """The observation of ``base``'s current state, through the env's own observation function."""
    return np.asarray(base._obs(), dtype=np.float32)


class BoundEnvs:
    """The env(s) a planner is bound to, and the check of ``predict``'s observation against them.

    ``envs`` are the unwrapped single envs the planner plans (one; or every sub-env of a vector env,
    in order); ``vector`` says whether ``predict`` takes a batch of ``len(envs)`` observations
    (a single env also accepts a batch of one, as SB3's ``evaluate_policy`` passes it).
    """

    _SB3_KEEPS_OBS = ("VecMonitor", "VecCheckNan")

    def __init__(self, env: Any, who: str) -> None:
        self.who = who
        self._transforms: list[Callable[[np.ndarray], np.ndarray]] = []
        subs, self.vector, self.description = self._sub_envs(env)
        if not subs:
            raise ValueError(f"{who} cannot bind to an empty vector env")
        self.envs = [self._checked_base(sub, i if self.vector else None) for i, sub in enumerate(subs)]

    def _sub_envs(self, env: Any) -> tuple[list[Any], bool, str]:
        from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecNormalize

        if isinstance(env, VecEnv):
            outer, v = type(env).__name__, env
            while isinstance(v, VecEnvWrapper):
                if isinstance(v, VecNormalize):
                    self._transforms.insert(0, v.normalize_obs)
                elif type(v).__name__ not in self._SB3_KEEPS_OBS:
                    raise ValueError(f"{self.who} cannot check observations through {type(v).__name__}: bind it "
                                     f"to a DummyVecEnv, optionally under VecMonitor, VecCheckNan or VecNormalize")
                v = v.venv
            if not isinstance(v, DummyVecEnv):
                raise ValueError(f"{self.who} plans from the state of its env's sub-envs and needs them in this "
                                 f"process: bind it to a DummyVecEnv (make_vec_env's default), got {type(v).__name__}")
            return list(v.envs), True, f"{outer} of {len(v.envs)} envs"
        if isinstance(env, gym.vector.VectorEnv):
            if not isinstance(env, gym.vector.SyncVectorEnv):
                raise ValueError(f"{self.who} plans from the state of its env's sub-envs: bind it to a "
                                 f"SyncVectorEnv or an SB3 DummyVecEnv of single envs, got {type(env).__name__}")
            return list(env.envs), True, f"SyncVectorEnv of {len(env.envs)} envs"
        return [env], False, type(getattr(env, "unwrapped", env)).__name__

    def _checked_base(self, env: Any, index: int | None) -> Any:
        """The unwrapped env under ``env``, refusing wrappers that change its observation."""
        base = getattr(env, "unwrapped", env)
        where = "" if index is None else f" (sub-env {index})"
        e = env
        while isinstance(e, gym.Wrapper):
            if isinstance(e, gym.ObservationWrapper):
                raise ValueError(f"{self.who} checks observations against its env's own: {type(e).__name__}"
                                 f"{where} changes them; bind it to the env without observation wrappers")
            e = e.env
        if getattr(env, "observation_space", None) != getattr(base, "observation_space", None):
            raise ValueError(f"{self.who}: a wrapper changes the observation space{where}; bind it to the env "
                             f"without observation wrappers")
        return base

    def expected(self) -> np.ndarray:
        """The bound envs' current observations (n, obs_dim), as ``predict`` must be shown them."""
        obs = np.stack([_env_observation(e) for e in self.envs])
        for transform in self._transforms:
            obs = np.asarray(transform(obs))
        return obs

    def check(self, observation: Any) -> bool:
        """Raise ``ValueError`` unless ``observation`` is the bound envs' current observation; return
        whether it came as a batch."""
        expected = self.expected()
        obs = np.asarray(observation)
        n, shape = len(self.envs), expected.shape[1:]
        if obs.shape == (n, *shape):
            batched = True
        elif not self.vector and obs.shape == shape:
            batched, obs = False, obs[None]
        else:
            want = f"{(n, *shape)}" if self.vector else f"{shape} or {(1, *shape)}"
            raise ValueError(f"{self.who}.predict got an observation of shape {obs.shape}; the bound "
                             f"{self.description} expects {want}")
        try:
            obs = obs.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self.who}.predict got a non-numeric observation") from None
        close = np.isclose(obs, expected, rtol=OBS_RTOL, atol=OBS_ATOL).all(axis=tuple(range(1, obs.ndim)))
        if not close.all():
            i = int(np.flatnonzero(~close)[0])
            diff = float(np.nanmax(np.abs(obs[i] - expected[i]))) if np.isfinite(obs[i]).all() else float("nan")
            where = f" of sub-env {i}" if self.vector else ""
            raise ValueError(
                f"{self.who}.predict was shown an observation{where} that is not the current observation of the "
                f"env it is bound to (largest difference {diff:.3g}): a baseline plans from the state of its "
                f"bound env, so bind it to the env you step (policy.bind(env)) and pass that env's latest "
                f"observation")
        return batched
