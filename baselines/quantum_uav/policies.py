"""The QuantumUav-v0 planners as SB3-style policies: a UAV planner's flight, power and schedule
(:mod:`baselines.cai2019.policies`, :mod:`baselines.cai2019.refine`) plus the best photon count
of every user in every slot (:func:`baselines.quantum_uav.photons.qkd_actions`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.envs.quantum_uav import QuantumUavEnv

from baselines.cai2019.policies import Algorithm3Policy, StraightLinePolicy
from baselines.cai2019.refine import RefinedTrajectoryPolicy
from baselines.quantum_uav import photons


class _QkdPlanner:
    """Mixin for QuantumUav-v0: a UAV plan from the parent class plus the best eps per slot.

    Everything of the UAV planner holds (limits, solver retries and fallbacks, ``stats``); the
    reported R_min shortfall is that of the secure rates (QKD time and key errors included), as
    QuantumUav-v0 scores it: the UAV plan meets R_min in data rate, which the QKD phase can cut.
    """

    env_cls = QuantumUavEnv
    env_name = "QuantumUav-v0"
    qkd_record: dict[str, Any] | None = None

    def make_plan(self) -> None:
        super().make_plan()  # type: ignore[misc]
        env = self.env  # type: ignore[attr-defined]
        a_qkd, self.qkd_record = photons.qkd_actions(
            env.scenario, env.constants, self.positions, self.velocities, self.plan.power_w,  # type: ignore[attr-defined]
            self.plan.user, env.geometry()["user_xy"])  # type: ignore[attr-defined]
        self._actions = np.concatenate([self._actions, a_qkd.astype(np.float32)], axis=1)  # type: ignore[has-type]

    def planned_shortfall(self) -> NDArray[np.float64]:
        assert self.qkd_record is not None
        r_min = self.env.scenario.r_min_bps  # type: ignore[attr-defined]
        return np.maximum(r_min - self.qkd_record["secure_rate_bps"], 0.0)


class StraightLineQkdPolicy(_QkdPlanner, StraightLinePolicy):
    """QuantumUav-v0: the straight-line baseline's flight, power and schedule, best eps per slot."""


class Algorithm3QkdPolicy(_QkdPlanner, Algorithm3Policy):
    """QuantumUav-v0: Algorithm 3's flight, power and schedule, best eps per slot."""


class RefinedQkdTrajectoryPolicy(_QkdPlanner, RefinedTrajectoryPolicy):
    """QuantumUav-v0: the refined flight, power and schedule, best eps per slot."""
