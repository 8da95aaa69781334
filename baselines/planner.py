"""The shared shell of every baseline planner (:class:`Planner`) and the planner contract.

A policy is built from an env (``Policy(env)``), reads the frame or slot the next action acts on
from the env, plans it with the analytic solver and returns the exact env action through the env's
own encoding. It never computes a reward or a score: the env does. The papers' planners subclass
:class:`Planner`: :mod:`baselines.yang2019.policies` (QkdNoma-v0), :mod:`baselines.cai2019.policies`
(UavSecureOfdma-v0) and :mod:`baselines.quantum_uav.policies` (QuantumUav-v0).

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

from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

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


class Planner:
    """The shell every baseline planner shares: bind, observation check, ``predict``, ``stats``.

    A subclass names the env it plans (:attr:`env_cls`, :attr:`env_name`), adds its own checks of
    a bound env (:meth:`_check_env`) and returns the planned action of the bound env's current state
    (:meth:`act`). ``env_overrides`` are scenario keywords the planner needs its env built with; the
    scorer builds the baseline's env with them, on the same seeds as everyone else. ``stats`` holds
    cumulative counters over the policy's lifetime (floats), one per name of :attr:`stat_keys`
    (none by default).

    A planner with :attr:`plans_batches` plans every sub-env of a vector env (they must share one
    scenario; ``env`` is then the first sub-env); the others plan one env at a time and refuse a
    vector env of more than one sub-env (see :class:`BoundEnvs` for what binds).
    """

    #: the unwrapped env class this planner plans, and its name in error messages
    env_cls: ClassVar[type] = object
    env_name: ClassVar[str] = ""
    env_overrides: ClassVar[dict[str, Any]] = {}
    #: the names of the counters in ``stats``
    stat_keys: ClassVar[tuple[str, ...]] = ()
    #: whether the planner plans every sub-env of a vector env (one action row each)
    plans_batches: ClassVar[bool] = False
    #: what a planner without ``plans_batches`` plans at a time (in the error that refuses a batch)
    one_at_a_time: ClassVar[str] = "one env at a time"

    def __init__(self, env: Any) -> None:
        self.stats: dict[str, float] = {key: 0.0 for key in self.stat_keys}
        self.bind(env)

    def bind(self, env: Any) -> None:
        """Plan for ``env`` from now on: one env the planner plans, or (with ``plans_batches``) a
        vector env of them sharing one scenario (see :class:`BoundEnvs`)."""
        name = type(self).__name__
        bound = BoundEnvs(env, name)
        if not self.plans_batches and len(bound.envs) != 1:
            raise ValueError(f"{name} plans {self.one_at_a_time} and cannot act on a batch: bind it to a "
                             f"single env, not a {bound.description}")
        for i, base in enumerate(bound.envs):
            # a planner of one env at a time names no sub-env: it has one
            self._check_env(base, f" (sub-env {i})" if bound.vector and self.plans_batches else "")
            if base.scenario != bound.envs[0].scenario:
                raise ValueError(f"{name}: the sub-envs of a vector env must share one scenario; "
                                 f"sub-env {i} differs from sub-env 0")
        self.bound = bound
        self.env = bound.envs[0]

    def _check_env(self, base: Any, where: str) -> None:
        """``ValueError`` unless ``base`` (an unwrapped env; ``where`` names its sub-env in the
        message) is one this planner plans."""
        if not isinstance(base, self.env_cls):
            raise ValueError(f"{type(self).__name__} plans {self.env_name}, got {type(base).__name__}{where}")

    def act(self) -> np.ndarray:
        """The planned action of the bound env's current state (one row per sub-env when the
        planner is bound to a vector env)."""
        raise NotImplementedError

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """The planned action of the bound env's current state (a batch, one row per sub-env, when
        ``observation`` is a batch); ``ValueError`` if ``observation`` is not that env's own
        current observation."""
        batched = self.bound.check(observation)
        action = self.act()
        if batched and action.ndim == 1:  # a batch of one observation, as SB3's VecEnv passes
            action = action[None]
        return action, state
