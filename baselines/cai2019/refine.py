"""Beyond the paper: Algorithm 3 and the joint refinement started from any flight (e.g. an agent's).

:class:`RefinedTrajectoryPolicy` is a planner like the others: at slot 0 of an episode it asks its
``source`` for a flight over this episode's layout (positions q[1..N] and velocities v[1..N] from
q0 to q_F), runs Algorithm 3's alternation from that flight instead of the straight line
(:func:`baselines.cai2019.trajectory.algorithm3` with ``start``), then the joint SCA over
trajectory and power (:func:`~baselines.cai2019.trajectory.joint_refinement`), and replays the
result through the env's full action. Both steps are monotone in the true EE (ties broken toward
less R_min shortfall), so the plan never scores below sub-problem 1 on the source's flight.
``agents.refine`` provides the source that rolls out a trained agent; the planner itself knows
nothing of agents.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from baselines.cai2019.trajectory import Algorithm3Result, algorithm3
from baselines.cai2019.policies import JointPolicy

#: geometry (``env.geometry()``: user_xy, eve_discs, eve_xy, start_xy, end_xy) -> (positions, velocities), (N, 2) each
TrajectorySource = Callable[[dict[str, NDArray[np.float64]]], tuple[NDArray[np.float64], NDArray[np.float64]]]


class RefinedTrajectoryPolicy(JointPolicy):
    """Algorithm 3 + joint refinement from the flight ``source`` gives for each layout;
    ``source_energy_efficiency`` keeps the EE of sub-problem 1 on the source's own flight."""

    def __init__(self, env: Any, source: TrajectorySource, max_outer: int = 10, tol: float = 1e-3) -> None:
        self.source = source
        self.source_energy_efficiency: float | None = None
        super().__init__(env, max_outer=max_outer, tol=tol)

    def start_plan(self, geo: dict[str, NDArray[np.float64]]) -> Algorithm3Result:
        s = self.layout_scenario()
        q, v = (np.asarray(x, dtype=np.float64) for x in self.source(geo))
        result = algorithm3(s, geo["user_xy"], max_outer=self.max_outer, tol=self.tol, start=(q, v))
        self.source_energy_efficiency = result.history[0]
        return result
