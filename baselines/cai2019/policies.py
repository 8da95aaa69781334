"""Baseline planners for UavSecureOfdma-v0 (Cai et al. 2019) as SB3-style policies.

A planner plans the whole mission once, when it sees the first slot of an episode, from the env's
scenario and this episode's geometry (users may be redrawn per episode), then replays its plan
slot by slot through the env's own action encoding. It never computes a score: the env does.

Every plan keeps every limit (leakage cap, peak and total power, whole subcarriers); where R_min
cannot be met on the planned trajectory, the plan says by how much (``plan.rmin_shortfall_bps``)
and the env scores the shortfall. A solver failure is retried and, failing that, the SCA keeps
its last feasible iterate. ``stats`` counts all of it over the policy's lifetime.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from secure_env.core import uav_ofdma as model
from secure_env.envs.uav_ofdma import UavSecureOfdmaEnv

from baselines.cai2019.power import PowerPlan, SolverLog, subproblem1
from baselines.cai2019.trajectory import Algorithm3Result, JointResult, algorithm3, joint_refinement
from baselines.planner import Planner


#: the counters of :attr:`_UavPlanner.stats`
STAT_KEYS = ("plans", "solver_retries", "solver_fallbacks", "rmin_infeasible_plans")


class _UavPlanner(Planner):
    """Common shell of the UAV planners: plan at slot 0, then return the planned action of the env's
    current slot. A plan follows one episode's layout and slot: one env at a time.

    ``stats`` holds cumulative counters over the policy's lifetime (floats): ``plans`` (layouts
    planned), ``solver_retries`` (convex or LP solves repeated with other settings after a
    failure), ``solver_fallbacks`` (failures no retry fixed, where the planner kept its last
    feasible iterate; for ``joint``, down to Algorithm 3's plan) and ``rmin_infeasible_plans``
    (plans that report an R_min shortfall). ``rmin_shortfall_bps`` (K,) is the last plan's
    [R_min - R_k]^+ per user, in the env's terms (the rate the env holds against R_min).
    """

    env_cls = UavSecureOfdmaEnv
    env_name = "UavSecureOfdma-v0"
    #: planners act through the paper's full action (the env's own encoding) with nothing between
    #: them and the physics; the scorer builds their env with these keywords on the same seeds
    env_overrides: ClassVar[dict[str, Any]] = {"action_mode": "full", "safety_layer": False}
    stat_keys = STAT_KEYS
    one_at_a_time = "one UAV episode at a time (a plan per layout, replayed slot by slot)"

    def __init__(self, env: Any) -> None:
        self.rmin_shortfall_bps: NDArray[np.float64] | None = None
        self.plan: PowerPlan | None = None
        self.positions: NDArray[np.float64] | None = None
        self.velocities: NDArray[np.float64] | None = None
        self._actions: NDArray[np.float32] | None = None
        super().__init__(env)

    def bind(self, env: Any) -> None:
        """Plan for ``env`` from now on (checks that it is a UavSecureOfdma env in the full action
        mode). A plan follows one episode's layout and slot: a vector env of more than one sub-env
        is refused (see :class:`baselines.planner.BoundEnvs` for what else binds)."""
        super().bind(env)
        self._actions = None
        self._key: Any = None

    def _check_env(self, base: Any, where: str) -> None:
        super()._check_env(base, where)
        if base.scenario.action_mode != "full":
            raise ValueError(f"{type(self).__name__} emits the paper's full action: build its env with "
                             f"action_mode='full' (got {base.scenario.action_mode!r})")

    def trajectory(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions q[1..N] and velocities v[1..N] (N, 2) to fly this episode."""
        raise NotImplementedError

    def layout_scenario(self) -> Any:
        """The scenario of the bound env's episode with its drawn users and eavesdropper discs
        written in (``env.layout_scenario()``): what every planner plans."""
        return self.env.layout_scenario()

    def make_plan(self) -> None:
        """Plan the current episode of the bound env."""
        s = self.layout_scenario()
        geo = self.env.geometry()
        self.positions, self.velocities = self.trajectory()
        self.plan = subproblem1(s, self.positions, self.velocities, geo["user_xy"])
        self._actions = model.encode_action(self.velocities, self.plan.power_w, self.plan.user,
                                            self.env.constants)

    def solver_log(self) -> SolverLog:
        """Solver retries and fallbacks of the last plan (all of its sub-problems)."""
        assert self.plan is not None
        return self.plan.solver

    def planned_shortfall(self) -> NDArray[np.float64]:
        """The last plan's R_min shortfall per user (K,), bit/s."""
        assert self.plan is not None
        return self.plan.rmin_shortfall_bps

    def _count_plan(self) -> None:
        log = self.solver_log()
        self.rmin_shortfall_bps = self.planned_shortfall()
        self.stats["plans"] += 1
        self.stats["solver_retries"] += log.retries
        self.stats["solver_fallbacks"] += log.fallbacks
        self.stats["rmin_infeasible_plans"] += bool(np.any(self.rmin_shortfall_bps > 0))

    def _plan_key(self) -> tuple[Any, bytes]:
        return self.layout_scenario(), self.env.geometry()["user_xy"].tobytes()

    def act(self) -> np.ndarray:
        """The planned action of the bound env's current slot (planning the layout at slot 0)."""
        slot = self.env.slot_index
        if slot == 0 or self._actions is None:
            key = self._plan_key()
            if key != getattr(self, "_key", None) or self._actions is None:
                # planners are deterministic: an episode with the same scenario and users
                # (every episode unless random_users=True) replays the plan already made
                self.make_plan()
                self._count_plan()
                self._key = key
        assert self._actions is not None
        return self._actions[min(slot, len(self._actions) - 1)]


class StraightLinePolicy(_UavPlanner):
    """The paper's baseline: straight flight q0 -> qF at constant speed ||qF - q0|| / (N tau),
    with power and scheduling from sub-problem 1 on that path."""

    def trajectory(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        s = self.layout_scenario()
        return model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)


class Algorithm3Policy(_UavPlanner):
    """Algorithm 3 of Cai et al. 2019: sub-problems 1 and 2 alternated from the straight line
    (see :func:`baselines.cai2019.trajectory.algorithm3`); ``result`` keeps its record.

    ``max_outer`` and ``tol`` are its stop rule (at most that many outer iterations, or a relative
    EE gain below ``tol``). The defaults (10, 1e-3) are every published figure's; on some layouts
    they stop well short of convergence (docs/models/uav_ofdma.md): ``max_outer=40, tol=1e-5``
    runs it to convergence."""

    def __init__(self, env: Any, max_outer: int = 10, tol: float = 1e-3) -> None:
        self.max_outer, self.tol = max_outer, tol
        self.result: Algorithm3Result | None = None
        super().__init__(env)

    def make_plan(self) -> None:
        geo = self.env.geometry()
        self.result = algorithm3(self.layout_scenario(), geo["user_xy"], max_outer=self.max_outer, tol=self.tol)
        self.positions, self.velocities = self.result.positions, self.result.velocities
        self.plan = self.result.plan
        self._actions = model.encode_action(self.velocities, self.plan.power_w, self.plan.user,
                                            self.env.constants)

    def solver_log(self) -> SolverLog:
        assert self.result is not None
        return self.result.solver


class JointPolicy(_UavPlanner):
    """Beyond the paper: Algorithm 3's plan refined by SCA over trajectory and power together
    (:func:`baselines.cai2019.trajectory.joint_refinement`); never below Algorithm 3."""

    def __init__(self, env: Any, max_outer: int = 10, tol: float = 1e-3) -> None:
        self.max_outer, self.tol = max_outer, tol          # Algorithm 3's stop rule (Algorithm3Policy)
        self.start: Algorithm3Result | None = None
        self.result: JointResult | None = None
        super().__init__(env)

    def start_plan(self, geo: dict[str, NDArray[np.float64]]) -> Algorithm3Result:
        """The plan the joint SCA starts from: Algorithm 3's."""
        return algorithm3(self.layout_scenario(), geo["user_xy"], max_outer=self.max_outer, tol=self.tol)

    def make_plan(self) -> None:
        geo = self.env.geometry()
        self.start = self.start_plan(geo)
        self.result = joint_refinement(self.layout_scenario(), self.start, geo["user_xy"])
        self.positions, self.velocities = self.result.positions, self.result.velocities
        self.plan = self.result.plan
        self._actions = model.encode_action(self.velocities, self.plan.power_w, self.plan.user,
                                            self.env.constants)

    def solver_log(self) -> SolverLog:
        assert self.start is not None and self.result is not None
        log = SolverLog()
        log.add(self.start.solver)
        log.add(self.result.solver)
        return log
