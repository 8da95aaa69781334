"""The planners of Yang et al. 2019 for QkdNoma-v0 as SB3-style policies: Algorithm 1, EXH, TDMA.

Each reads the frame the next action acts on from its bound env, plans it and returns the exact
env action through the env's own encoding (the shell and contract: :class:`baselines.planner.Planner`).
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from secure_env.core import qkd_noma as model
from secure_env.envs.qkd_noma import QkdNomaEnv

from baselines.planner import Planner
from baselines.yang2019.algorithm1 import Plan, algorithm1
from baselines.yang2019.exh import exhaustive
from baselines.yang2019.tdma import tdma


class _QkdNomaPlanner(Planner):
    """Common shell of the QkdNoma-v0 planners: frame in, encoded action out.

    ``env_overrides`` are checked at bind (TDMA needs ``multiple_access="tdma"``). Bound to a
    vector env, the planner plans every sub-env's frame (:meth:`plan_batch`); ``env`` is then the
    first sub-env (they share one scenario) and ``last_plan`` holds one row per sub-env.
    """

    env_cls = QkdNomaEnv
    env_name = "QkdNoma-v0"
    plans_batches = True

    def __init__(self, env: Any) -> None:
        self.last_plan: Plan | None = None
        super().__init__(env)

    def _check_env(self, base: Any, where: str) -> None:
        super()._check_env(base, where)
        for key, value in self.env_overrides.items():
            if getattr(base.scenario, key) != value:
                raise ValueError(f"{type(self).__name__} needs the env built with {key}={value!r}, "
                                 f"got {getattr(base.scenario, key)!r}{where}")

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        """The plan of one frame (gains and distances (K,))."""
        raise NotImplementedError

    def plan_batch(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        """The plans of B frames (gains and distances (B, K)): :meth:`plan` frame by frame, unless
        the planner is batched."""
        plans = [self.plan(g, d) for g, d in zip(gains, distances)]
        return Plan(eps=np.stack([p.eps for p in plans]), split=np.stack([p.split for p in plans]),
                    objective_bps=np.stack([np.asarray(p.objective_bps) for p in plans]))

    def act(self) -> np.ndarray:
        """The planned action of the bound env's current frame (one row per sub-env of a vector env)."""
        if self.bound.vector:
            frames = [e.current_frame() for e in self.bound.envs]
            self.last_plan = self.plan_batch(np.stack([f["channel_gain"] for f in frames]),
                                             np.stack([f["distance_m"] for f in frames]))
        else:
            frame = self.env.current_frame()
            self.last_plan = self.plan(frame["channel_gain"], frame["distance_m"])
        return model.encode_action(self.last_plan.eps, self.last_plan.split)


class Algorithm1Policy(_QkdNomaPlanner):
    """Algorithm 1 of Yang et al. 2019 from the default start (eps = 0.5); batched over sub-envs."""

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        return algorithm1(self.env.scenario, gains, distances)

    def plan_batch(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        return algorithm1(self.env.scenario, gains, distances)


class ExhPolicy(_QkdNomaPlanner):
    """EXH: Algorithm 1 from 100 seeded random starts plus the default start, best kept."""

    def __init__(self, env: Any, seed: int = 0, restarts: int = 100) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)
        self.restarts = restarts

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        return exhaustive(self.env.scenario, gains, distances, self.rng, self.restarts)


class TdmaPolicy(_QkdNomaPlanner):
    """The paper's TDMA benchmark: optimal max-min eps and time shares, stage 2 by TDMA; batched
    over sub-envs."""

    env_overrides: ClassVar[dict[str, Any]] = {"multiple_access": "tdma"}

    def plan(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        return tdma(self.env.scenario, gains, distances)

    def plan_batch(self, gains: np.ndarray, distances: np.ndarray) -> Plan:
        return tdma(self.env.scenario, gains, distances)
