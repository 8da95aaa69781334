"""The QuantumUav-v0 planners as SB3-style policies: a UAV planner's flight, power and schedule
(:mod:`baselines.cai2019.policies`, :mod:`baselines.cai2019.refine`) plus the best photon count
of every user in every slot (:func:`baselines.quantum_uav.photons.qkd_actions`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from secure_env.core import uav_ofdma as model
from secure_env.envs.quantum_uav import QuantumUavEnv

from baselines.cai2019.policies import STAT_KEYS, Algorithm3Policy, StraightLinePolicy
from baselines.cai2019.power import RATE_MARGIN, SlotProblem, SolverLog, least_shortfall, subproblem1
from baselines.cai2019.refine import RefinedTrajectoryPolicy
from baselines.quantum_uav import photons


#: a relaxation's least total shortfall above this fraction of R_min certifies R_min out of reach
CERTIFY_TOL = 1e-6


class _QkdPlanner:
    """Mixin for QuantumUav-v0: a UAV plan from the parent class plus the best eps per slot.

    Everything of the UAV planner holds (limits, solver retries and fallbacks, ``stats``); the
    reported R_min shortfall is that of the secure rates (QKD time and key errors included), as
    QuantumUav-v0 scores it: the UAV plan meets R_min in data rate, which the QKD phase can cut.
    """

    env_cls = QuantumUavEnv
    env_name = "QuantumUav-v0"
    qkd_record: dict[str, Any] | None = None
    #: the last plan's: solver log of its QKD re-plans, how many, and its certified shortfall (K,)
    #: (None: R_min met, nothing to certify); set by :meth:`make_plan`
    replan_log: SolverLog = SolverLog()
    qkd_replans_done = 0
    rmin_certified_shortfall_bps: NDArray[np.float64] | None = None

    #: power/schedule re-plans with the QKD phase inside R_min (see :meth:`make_plan`)
    qkd_replans = 8
    stat_keys = (*STAT_KEYS, "rmin_certified_plans")

    def make_plan(self) -> None:
        """The UAV plan, then the best photon counts; where the QKD phase leaves a user below
        R_min, the power and schedule are planned again on the same flight with the QKD phase
        inside C6 (sub-problem 1 with each rate weighted by the largest secure share,
        (1 - e_k[n]) (tau - QKD time[n]) / tau, any photon count could leave it:
        :func:`~baselines.quantum_uav.photons.secure_share_bound`), then the photons again, until
        every secure rate meets R_min or :attr:`qkd_replans` re-plans. The photons chosen for the
        plan leave a little less than that bound, so a user still short has its weights scaled by
        its secure rate over the target before the next re-plan. The plan with the least secure
        shortfall (then the best secure EE) is kept. Where it still falls short, ``rmin_certified_shortfall_bps`` (K,) is the least
        shortfall of the time-sharing relaxation on this flight with every rate weighted by an
        upper bound of its secure share over all photon counts
        (:func:`~baselines.quantum_uav.photons.secure_share_bound`,
        :func:`~baselines.cai2019.power.least_shortfall`): positive, it certifies that no plan on
        this flight meets R_min (``stats["rmin_certified_plans"]`` counts those plans)."""
        super().make_plan()  # type: ignore[misc]
        env = self.env  # type: ignore[attr-defined]
        s, users = self.layout_scenario(), env.geometry()["user_xy"]  # type: ignore[attr-defined]

        def photons_for(plan: Any) -> tuple[Any, dict[str, Any]]:
            return photons.qkd_actions(s, model.SlotConstants.from_scenario(s), self.positions, self.velocities,  # type: ignore[attr-defined]
                                       plan.power_w, plan.user, users)

        def rank(record: dict[str, Any]) -> tuple[float, float]:
            short = np.maximum(s.r_min_bps - record["secure_rate_bps"], 0.0).sum()
            return float(short), -record["secure_ee_history"][-1]

        plan = self.plan  # type: ignore[attr-defined]
        a_qkd, record = photons_for(plan)
        best = (rank(record), plan, a_qkd, record)
        self.replan_log = SolverLog()
        self.qkd_replans_done = 0
        self.rmin_certified_shortfall_bps = None
        aim = s.r_min_bps * (1.0 + RATE_MARGIN)
        scale = np.ones(len(users))
        bound = None
        for _ in range(self.qkd_replans if s.r_min_bps > 0 else 0):
            if best[0][0] <= 0.0:
                break
            if bound is None:
                bound = photons.secure_share_bound(s, self.positions, users)  # type: ignore[attr-defined]
            secure = record["secure_rate_bps"]
            short = secure < s.r_min_bps * (1.0 + 0.5 * RATE_MARGIN)
            if self.qkd_replans_done:   # the photons fell short of the bound: aim higher for the short users
                scale[short] *= np.clip(secure[short] / aim, 0.5, 1.0)
            plan = subproblem1(s, self.positions, self.velocities, users,  # type: ignore[attr-defined]
                               rate_weight=bound * scale)
            self.replan_log.add(plan.solver)
            self.qkd_replans_done += 1
            a_qkd, record = photons_for(plan)
            if rank(record) < best[0]:
                best = (rank(record), plan, a_qkd, record)
        (short_total, _), plan, a_qkd, self.qkd_record = best
        if short_total > 0:
            if bound is None:
                bound = photons.secure_share_bound(s, self.positions, users)  # type: ignore[attr-defined]
            sp = SlotProblem.from_trajectory(s, self.positions, self.velocities, users,  # type: ignore[attr-defined]
                                             rate_weight=bound)
            self.rmin_certified_shortfall_bps = least_shortfall(sp, s.r_min_bps, log=self.replan_log)
        if plan is not self.plan:  # type: ignore[attr-defined]
            self.plan = plan
            self._actions = model.encode_action(self.velocities, plan.power_w, plan.user,  # type: ignore[attr-defined]
                                                env.constants)
        self._actions = np.concatenate([self._actions, a_qkd.astype(np.float32)], axis=1)  # type: ignore[has-type]
        # num_users_range: the plan is for the episode's k users; the env's action holds K QKD budgets
        pad = env.action_space.shape[0] - self._actions.shape[1]
        if pad > 0:
            self._actions = np.pad(self._actions, ((0, 0), (0, pad)), constant_values=-1.0)

    def rmin_certified(self) -> bool:
        """Whether the last plan's R_min shortfall is certified out of reach on its flight."""
        cert = self.rmin_certified_shortfall_bps
        return cert is not None and float(np.sum(cert)) > CERTIFY_TOL * self.env.scenario.r_min_bps  # type: ignore

    def _count_plan(self) -> None:
        super()._count_plan()  # type: ignore[misc]
        self.stats["rmin_certified_plans"] += self.rmin_certified()  # type: ignore[attr-defined]

    def solver_log(self) -> SolverLog:
        """The UAV planner's solver log plus that of the QKD re-plans."""
        log = SolverLog()
        log.add(super().solver_log())  # type: ignore[misc]
        log.add(self.replan_log)
        return log

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
