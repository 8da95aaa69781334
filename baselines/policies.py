"""Baseline planners wrapped as Stable-Baselines3-style policies.

A policy is built from an env (``Policy(env)``), reads the frame the next action acts on from the
env, plans it with the analytic solver and returns the exact env action through the env's own
encoding. It never computes a reward or a score: the env does.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from secure_env.core import qkd_noma as model
from secure_env.envs.qkd_noma import QkdNomaEnv

from baselines import yang2019


@runtime_checkable
class Policy(Protocol):
    """The interface shared by trained SB3 models and the baselines."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        ...


class _QkdNomaPlanner:
    """Common shell of the QkdNoma-v0 planners: frame in, encoded action out.

    ``env_overrides`` are scenario keywords the planner needs (TDMA needs ``multiple_access="tdma"``);
    the scorer builds the baseline's env with them, on the same seeds as everyone else.
    """

    env_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, env: Any) -> None:
        self.last_plan: yang2019.Plan | None = None
        self.bind(env)

    def bind(self, env: Any) -> None:
        """Plan for ``env`` from now on (checks that it is a QkdNoma env with the needed keywords)."""
        base = getattr(env, "unwrapped", env)
        if not isinstance(base, QkdNomaEnv):
            raise ValueError(f"{type(self).__name__} plans QkdNoma-v0, got {type(base).__name__}")
        for key, value in self.env_overrides.items():
            if getattr(base.scenario, key) != value:
                raise ValueError(f"{type(self).__name__} needs the env built with {key}={value!r}, "
                                 f"got {getattr(base.scenario, key)!r}")
        self.env = base

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> yang2019.Plan:
        raise NotImplementedError

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        frame = self.env.current_frame()
        self.last_plan = self.plan(frame["channel_gain"], frame["distance_m"])
        action = model.encode_action(self.last_plan.eps, self.last_plan.split)
        if np.ndim(observation) == 2:  # a batch of one observation, as SB3's VecEnv passes
            action = action[None]
        return action, state


class Algorithm1Policy(_QkdNomaPlanner):
    """Algorithm 1 of Yang et al. 2019 from the default start (eps = 0.5)."""

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> yang2019.Plan:
        return yang2019.algorithm1(self.env.scenario, gains, distances)


class ExhPolicy(_QkdNomaPlanner):
    """EXH: Algorithm 1 from 100 seeded random starts plus the default start, best kept."""

    def __init__(self, env: Any, seed: int = 0, restarts: int = 100) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)
        self.restarts = restarts

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> yang2019.Plan:
        return yang2019.exhaustive(self.env.scenario, gains, distances, self.rng, self.restarts)


class TdmaPolicy(_QkdNomaPlanner):
    """The paper's TDMA benchmark: optimal max-min eps and time shares, stage 2 by TDMA."""

    env_overrides: ClassVar[dict[str, Any]] = {"multiple_access": "tdma"}

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> yang2019.Plan:
        return yang2019.tdma(self.env.scenario, gains, distances)
