"""Cai et al. 2019, sub-problem 2 (trajectory and velocity for fixed power and scheduling) and
Algorithm 3 (alternating optimisation), spec §10-§11.

Sub-problem 2 is the spec's Algorithm 2: an SCA main loop around a Dinkelbach inner loop. Each
convex problem (53) maximises sum R_lb - eta sum Pbar over positions q[1..N], velocities v[1..N],
the flight-power slack chi and the S-procedure multipliers varpi, with

* the rate lower bound (46): the first-order expansion of log2(1 + rho / (H^2 + x)) in
  x = ||q - w_k||^2 (convex in x, so the tangent is a global under-estimator);
* the flight-power slack (47)-(50): Pbar uses P_I chi with chi^-2 <= chi_j^2 + 2 chi_j (chi - chi_j)
  + (||v_j||^2 + 2 v_j^T (v - v_j)) / v0^2 (the linearised (49));
* the leakage constraint (32) with the S-procedure LMI (35) whose corner ||q - w_E||^2 is
  replaced by its tangent (44), written in its second-order-cone form
  ||q - w_E||^2 <= (1 + varpi)(Lambda_j + H^2 - D_req - varpi r_E^2) (spec §10.4), kept for the
  slots whose power needs more than the altitude (D_req > H^2, else it is inactive);
* C5 (Pbar <= P_max), C6 (sum_n R_lb >= N R_min), C8-C12.

Every surrogate is tight at the expansion point and conservative elsewhere, so each SCA step is
feasible for the true problem and the true energy efficiency does not decrease. Units are rescaled
for Clarabel: positions in 100 m, velocities in 10 m/s, rates in Mbit/s, powers in kW.

C6 is kept as R_k >= min(R_min (1 + RATE_MARGIN), R_k at the expansion point): the paper's C6 for
a plan that meets R_min, and "no user falls further short" for one that cannot (sub-problem 1
reports the shortfall); the expansion point is then always feasible. A convex solve that fails
(Clarabel's ``InsufficientProgress`` on some layouts) is retried with a fresh solver, shorter
interior-point steps and no equilibration, as a solver's users do; if every retry fails, the
SCA step is taken from the last successful solve of its Dinkelbach loop, or, if none succeeded,
the SCA stops at its last (feasible) iterate: for the joint refinement, at worst Algorithm 3's
plan. Both are counted in a :class:`baselines.cai2019.power.SolverLog`.

Algorithm 3 alternates :func:`baselines.cai2019.power.subproblem1` and :func:`subproblem2` from the
straight line until the energy efficiency improves by less than a relative 1e-3 or 10 outer
iterations; every iteration's EE is recorded. Plans are ranked by their total R_min shortfall
first, then by EE (the same as by EE when R_min is met). All energy efficiencies are evaluated by
:func:`secure_env.core.uav_ofdma.trajectory_outcome`, the env's own metric code.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core import uav_ofdma as model
from secure_env.core.flight import induced_slack
from secure_env.core.ofdma import squared_distance, squared_distance_xy

from baselines.cai2019 import power

_LN2 = math.log(2.0)
_POS = 100.0      # m per position unit
_VEL = 10.0       # m/s per velocity unit
_RATE = 1e6       # bit/s per rate unit
_POWER = 1e3      # W per power unit
#: limits are tightened by this relative margin so that float32 replay in the env never projects
_MARGIN = 1e-6
#: Clarabel settings of a convex step's solve, tried in turn until one succeeds: the defaults on
#: the cached solver (cvxpy updates its data in place), a freshly built solver, shorter
#: interior-point steps, no equilibration. Every attempt names every setting it varies, since the
#: cached solver keeps the settings of its last solve.
_ATTEMPTS: tuple[dict[str, Any], ...] = (
    {"warm_start": True, "max_step_fraction": 0.99, "equilibrate_enable": True},
    {"warm_start": False, "max_step_fraction": 0.99, "equilibrate_enable": True},
    {"warm_start": False, "max_step_fraction": 0.9, "equilibrate_enable": True},
    {"warm_start": False, "max_step_fraction": 0.99, "equilibrate_enable": False},
)


@dataclass
class TrajectoryResult:
    """Output of :func:`subproblem2`: the new trajectory and the per-iteration true EE."""

    positions: NDArray[np.float64]
    velocities: NDArray[np.float64]
    energy_efficiency: float
    history: list[float] = field(default_factory=list)      # true EE after each SCA iteration
    inner_iterations: list[int] = field(default_factory=list)  # Dinkelbach iterations per SCA step
    solves: int = 0
    solver: power.SolverLog = field(default_factory=power.SolverLog)


def integrate_and_check(scenario: Any, velocities: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Positions q[1..N] flown with ``velocities`` (as the env integrates them), or None when a
    solver's (possibly inaccurate) velocities break the speed or acceleration limit or miss qF by
    more than 1 cm. The SCA tightens the limits by a relative 1e-6, far above solver noise."""
    s = scenario
    v = np.asarray(velocities, dtype=np.float64)
    q = np.asarray(s.start_xy) + s.slot_s * np.cumsum(v, axis=0)
    if np.any(np.linalg.norm(v, axis=1) > s.v_max_mps * (1 - 1e-7)):
        return None
    if len(v) > 1 and np.any(np.linalg.norm(np.diff(v, axis=0), axis=1) > s.dv_max_mps * (1 - 1e-7)):
        return None
    if np.linalg.norm(q[-1] - np.asarray(s.end_xy)) > 1e-2:
        return None
    q[-1] = s.end_xy
    return q


def rates_kept(r_min_bps: float, new_rate_bps: NDArray[np.float64], old_rate_bps: NDArray[np.float64]) -> bool:
    """C6 as an SCA step must keep it: no user's mission-average rate below min(R_min with half the
    planners' margin, its rate before the step up to a relative 1e-6) (a user short of R_min may
    not fall further than the solver's tolerance)."""
    floor = np.minimum(r_min_bps * (1.0 + 0.5 * power.RATE_MARGIN), old_rate_bps * (1.0 - 1e-6))
    return bool(np.all(new_rate_bps >= floor))


def _rate_floor(scenario: Any, mean_rate_bps: ArrayLike | None, k: int) -> NDArray[np.float64]:
    """Per-user C6 bound of a convex step, sum over slots, in rate units: N R_min (1 + margin),
    or a user's rate at the expansion point where that is lower."""
    target = np.full(k, scenario.r_min_bps * (1.0 + power.RATE_MARGIN))
    if mean_rate_bps is not None:
        target = np.minimum(target, np.asarray(mean_rate_bps, dtype=np.float64))
    return scenario.num_slots * target / _RATE


class _FlightSca:
    """What both SCA problems share: kinematics (C8-C12), the flight-power slack (47)-(50), the
    surrogate total power Pbar with C5, the expansion point of the slack, and the solve call."""

    def _flight(self, cp: Any, p_comm: Any) -> tuple[list[Any], Any]:
        """Variables q, v, chi and parameters chi_j, v_j, phi_const; returns (constraints, Pbar)."""
        s, c, n = self.s, self.c, self.n
        rotor = c.rotor
        self.log = power.SolverLog()
        self._attempt = 0          # the entry of _ATTEMPTS that solved last
        self.q = cp.Variable((n, 2))
        self.v = cp.Variable((n, 2))
        self.chi = cp.Variable(n, pos=True)
        self.chi_j = cp.Parameter(n, nonneg=True)
        self.v_j = cp.Parameter((n, 2))
        self.phi_const = cp.Parameter(n)
        q0 = np.asarray(s.start_xy) / _POS
        qf = np.asarray(s.end_xy) / _POS
        step = s.slot_s * _VEL / _POS
        cons = [self.q[0] == q0 + step * self.v[0], self.q[1:] == self.q[:-1] + step * self.v[1:],
                self.q[n - 1] == qf,
                cp.norm(self.v, 2, axis=1) <= s.v_max_mps / _VEL * (1 - _MARGIN)]
        if n > 1:
            cons.append(cp.norm(self.v[1:] - self.v[:-1], 2, axis=1) <= c.dv_max_mps / _VEL * (1 - _MARGIN))
        # flight-power slack (49)-(50): chi^-2 <= Phi_j
        scale_v = _VEL ** 2 / rotor.induced_velocity_mps ** 2
        phi = (2.0 * cp.multiply(self.chi_j, self.chi)
               + 2.0 * scale_v * cp.sum(cp.multiply(self.v_j, self.v), axis=1) + self.phi_const)
        cons.append(cp.power(self.chi, -2) <= phi)
        speed2 = cp.sum(cp.square(self.v), axis=1)
        pbar = ((c.circuit_power_w + rotor.profile_power_w) / _POWER + p_comm / _POWER
                + 3.0 * rotor.profile_power_w * _VEL ** 2 / rotor.tip_speed_mps ** 2 / _POWER * speed2
                + rotor.induced_power_w / _POWER * self.chi
                + rotor.parasite_coeff * _VEL ** 3 / _POWER * cp.power(cp.norm(self.v, 2, axis=1), 3))
        cons.append(pbar <= c.p_max_w / _POWER)
        self.pbar = pbar
        return cons, pbar

    def _set_flight_point(self, v_j: NDArray[np.float64]) -> None:
        c = self.c
        chi_j = induced_slack(np.linalg.norm(v_j, axis=1), c.rotor)
        vv = v_j / _VEL
        scale_v = _VEL ** 2 / c.rotor.induced_velocity_mps ** 2
        self.chi_j.value = chi_j
        self.v_j.value = vv
        self.phi_const.value = -chi_j ** 2 - scale_v * np.sum(vv * vv, axis=1)

    @staticmethod
    def _s_procedure(cp: Any, x: Any, lam: Any, zeta_term: Any, varpi: Any, radius: float) -> Any:
        """||x||^2 <= (1 + varpi)(lam - zeta_term - varpi r^2) as a rotated second-order cone,
        x = q - w_E (rows), lam the tangent (44) plus H^2 (pos units)."""
        cn = lam - zeta_term - varpi * (radius / _POS) ** 2
        y = 1.0 + varpi
        return cp.SOC(y + cn, cp.vstack([2.0 * x[:, 0], 2.0 * x[:, 1], y - cn]), axis=0)

    def solve(self, eta: float) -> bool:
        """Solve the convex step at ``eta``: the settings of :data:`_ATTEMPTS` in turn, from the
        ones that solved last, until one ends optimal (each further attempt counts as a retry in
        ``log``). False if none did. An inaccurate optimum is accepted: its caller checks the
        step against the true limits."""
        import cvxpy as cp

        self.eta.value = max(eta, 0.0)
        for tries in range(len(_ATTEMPTS)):
            index = (self._attempt + tries) % len(_ATTEMPTS)
            self.log.retries += tries > 0
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                    self.problem.solve(solver=cp.CLARABEL, canon_backend=cp.SCIPY_CANON_BACKEND,
                                       **_ATTEMPTS[index])
            except cp.error.SolverError:
                continue
            if self.problem.status in ("optimal", "optimal_inaccurate"):
                self._attempt = index
                return True
        return False

    def dinkelbach(self, eta: float, inner_tol: float, max_inner: int) -> tuple[Any, int]:
        """Dinkelbach on the surrogate from ``eta`` (line 6 of Algorithm 2): solve, then
        eta <- sum R_lb / sum Pbar until ``sum R_lb - eta sum Pbar`` falls below ``inner_tol``
        times ``eta sum Pbar``. Returns (the last successful solve's :meth:`solution`, solves).
        A solve that fails on every retry ends the loop at the last successful one (a fallback in
        ``log``); the solution is None if the first one failed."""
        sol, solves = None, 0
        for _ in range(max_inner):
            if not self.solve(eta):
                self.log.fallbacks += 1
                break
            solves += 1
            sol = self.solution()
            rlb, pbar = self.surrogate_ratio()
            if rlb - eta * pbar <= inner_tol * eta * pbar:
                break
            eta = rlb / pbar
        return sol, solves

    def surrogate_ratio(self) -> tuple[float, float]:
        """(sum R_lb in bit/s, sum Pbar in W) at the current solution."""
        return float(self.rlb.value) * _RATE, float(np.sum(self.pbar.value)) * _POWER


class _Sca(_FlightSca):
    """The convex problem (53) as a cvxpy problem with the expansion point and eta as parameters."""

    def __init__(self, scenario: Any, plan: power.PowerPlan, user_xy: NDArray[np.float64]) -> None:
        import cvxpy as cp

        s = scenario
        c = model.SlotConstants.from_scenario(s)
        self.s, self.c = s, c
        n, k = plan.counts.shape
        self.n, self.k = n, k
        counts = plan.counts.astype(np.float64)
        pk = plan.power_per_subcarrier
        self.rho = pk * c.gamma0                                    # m^2, (N, K)
        self.cw = counts * c.subcarrier_hz                          # Hz, (N, K)
        p_comm = np.sum(counts * pk, axis=1)                        # W, (N,)
        p_hat = np.max(np.where(counts > 0, pk, 0.0), axis=1)
        d_req = p_hat * c.gamma0 / c.gamma_tol                      # m^2 the eavesdropper must keep
        self.users = user_xy / _POS
        eve = np.asarray(c.eve_xy) / _POS
        h2 = c.altitude_m ** 2

        self.eta = cp.Parameter(nonneg=True)
        self.a_hat = cp.Parameter((n, k))
        self.b_hat = cp.Parameter((n, k), nonneg=True)
        cons, pbar = self._flight(cp, p_comm)
        # leakage: S-procedure in SOC form for the slots where it can bind
        active = np.flatnonzero(d_req > h2 * (1 + 1e-12))
        self.active = active
        if len(active):
            self.varpi = cp.Variable(len(active), nonneg=True)
            self.g = cp.Parameter((len(active), 2))          # q_j - w_E
            self.g2 = cp.Parameter(len(active))              # -||q_j - w_E||^2 + (H^2 - D_req)/L^2
            qa = self.q[active]
            lam = 2.0 * cp.sum(cp.multiply(self.g, qa - eve), axis=1) + self.g2
            cons.append(self._s_procedure(cp, qa - eve, lam, 0.0, self.varpi, c.eve_radius_m))
            self.hd = (h2 - d_req[active]) / _POS ** 2
        # rate lower bound (46), per user
        rlb_user = []
        for kk in range(k):
            sq = cp.sum(cp.square(self.q - self.users[kk]), axis=1)
            rlb_user.append(cp.sum(self.a_hat[:, kk]) - cp.sum(cp.multiply(self.b_hat[:, kk], sq)))
        self.rlb_user = rlb_user
        self.rlb = sum(rlb_user)
        self.rate_floor = cp.Parameter(k, nonneg=True)
        self.rate_floor.value = _rate_floor(s, None, k)
        if s.r_min_bps > 0:
            cons += [r >= self.rate_floor[kk] for kk, r in enumerate(rlb_user)]
        self.objective = self.rlb - self.eta * _POWER / _RATE * cp.sum(pbar)
        self.problem = cp.Problem(cp.Maximize(self.objective), cons)

    def set_point(self, q_j: NDArray[np.float64], v_j: NDArray[np.float64],
                  mean_rate_bps: ArrayLike | None = None) -> None:
        """Expansion point (positions and velocities in SI units); ``mean_rate_bps`` (K,) the
        users' rates there, where C6 keeps a user short of R_min from falling further (None: C6)."""
        c = self.c
        self._set_flight_point(v_j)
        self.rate_floor.value = _rate_floor(self.s, mean_rate_bps, self.k)
        d2 = squared_distance(q_j, self.users * _POS, c.altitude_m)                                 # (N, K)
        lin = self.rho / (d2 + self.rho) / d2 / _LN2                                                 # 1/m^2
        b = self.cw * lin * _POS ** 2 / _RATE
        self.b_hat.value = b
        self.a_hat.value = self.cw * np.log2(1.0 + self.rho / d2) / _RATE + b * (d2 - c.altitude_m ** 2) / _POS ** 2
        if len(self.active):
            qa = q_j[self.active] / _POS
            g = qa - np.asarray(c.eve_xy) / _POS
            self.g.value = g
            self.g2.value = -np.sum(g * g, axis=1) + self.hd

    def solution(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return np.asarray(self.q.value) * _POS, np.asarray(self.v.value) * _VEL


def subproblem2(scenario: Any, plan: power.PowerPlan, positions: ArrayLike, velocities: ArrayLike,
                user_xy: ArrayLike | None = None, *, tol: float = 1e-3, max_sca: int = 20,
                inner_tol: float = 1e-6, max_inner: int = 20) -> TrajectoryResult:
    """Trajectory and velocity maximising energy efficiency for fixed power and scheduling.

    ``positions``/``velocities`` (N, 2) is the feasible start (the trajectory ``plan`` was made for).
    SCA stops when the true EE improves by less than the relative ``tol`` or after ``max_sca``
    iterations; each SCA step runs Dinkelbach on the surrogate until ``sum R_lb - eta sum Pbar``
    falls below ``inner_tol`` times ``eta sum Pbar``. A step whose solves fail on every retry, or
    whose answer breaks a true limit (solver inaccuracy), ends the SCA at the last iterate.
    """
    users = np.asarray(scenario.user_xy if user_xy is None else user_xy, dtype=np.float64)
    c = model.SlotConstants.from_scenario(scenario)
    sca = _Sca(scenario, plan, users)
    q = np.asarray(positions, dtype=np.float64).copy()
    v = np.asarray(velocities, dtype=np.float64).copy()
    out = model.trajectory_outcome(q, v, plan.power_w, plan.user, users, c)
    ee, rates = out["energy_efficiency_bits_per_joule"], out["mean_rate_bps"]
    result = TrajectoryResult(q, v, ee, history=[ee], solver=sca.log)
    for _ in range(max_sca):
        sca.set_point(q, v, rates)
        sol, inner = sca.dinkelbach(ee, inner_tol, max_inner)
        result.solves += inner
        if sol is None:
            break
        v_new = sol[1]
        q_new = integrate_and_check(scenario, v_new)
        if q_new is None:
            break
        out = model.trajectory_outcome(q_new, v_new, plan.power_w, plan.user, users, c)
        ee_new = out["energy_efficiency_bits_per_joule"]
        if np.any(out["leakage_excess"] > 0) or not rates_kept(scenario.r_min_bps, out["mean_rate_bps"], rates):
            break
        result.inner_iterations.append(inner)
        if ee_new < ee:       # solver inaccuracy only: the surrogate step cannot lose EE
            break
        gain = (ee_new - ee) / ee
        q, v, ee, rates = q_new, v_new, ee_new, out["mean_rate_bps"]
        result.history.append(ee)
        if gain < tol:
            break
    result.positions, result.velocities, result.energy_efficiency = q, v, ee
    return result


@dataclass
class MissionPlan:
    """A flight q[1..N], v[1..N] (N, 2) with its power and schedule, and the plan's true EE (bits/J)."""

    positions: NDArray[np.float64]
    velocities: NDArray[np.float64]
    plan: power.PowerPlan
    energy_efficiency: float


@dataclass
class Algorithm3Result(MissionPlan):
    """The joint plan of Algorithm 3 and its record."""

    history: list[float]                 # EE after each outer iteration (index 0: straight line)
    sca_iterations: list[int]
    wall_s: float
    solver: power.SolverLog = field(default_factory=power.SolverLog)   # of every sub-problem solved


def total_shortfall(plan: power.PowerPlan) -> float:
    """Sum over users of the plan's R_min shortfall (bit/s)."""
    return float(np.sum(plan.rmin_shortfall_bps))


#: shortfalls closer than this (bit/s) rank as equal
_SHORTFALL_TOL = 1e-6


def _worse(a: power.PowerPlan, b: power.PowerPlan) -> bool:
    """Is ``a`` worse than ``b``: a larger total R_min shortfall, or the same and a lower EE."""
    sa, sb = total_shortfall(a), total_shortfall(b)
    if abs(sa - sb) > _SHORTFALL_TOL:
        return sa > sb
    return a.energy_efficiency < b.energy_efficiency


def algorithm3(scenario: Any, user_xy: ArrayLike | None = None, *, tol: float = 1e-3, max_outer: int = 10,
               max_sca: int = 20, start: tuple[ArrayLike, ArrayLike] | None = None) -> Algorithm3Result:
    """Alternate sub-problem 1 and sub-problem 2 from the straight line (spec §11), or from
    ``start`` = (positions q[1..N], velocities v[1..N]), any admissible flight ending at q_F
    (beyond the paper: e.g. a trained agent's).

    Stops when an outer iteration neither reduces the total R_min shortfall nor gains a relative
    ``tol`` of EE, or after ``max_outer`` iterations. ``solver`` sums the solver logs of every
    sub-problem solved.
    """
    t0 = time.perf_counter()
    s = scenario
    users = np.asarray(s.user_xy if user_xy is None else user_xy, dtype=np.float64)
    if start is None:
        q, v = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    else:
        q, v = (np.array(x, dtype=np.float64) for x in start)
        if q.shape != (s.num_slots, 2) or v.shape != (s.num_slots, 2):
            raise ValueError(f"start must be (positions, velocities) of shape ({s.num_slots}, 2)")
    plan = power.subproblem1(s, q, v, users)
    log = power.SolverLog()
    log.add(plan.solver)
    ee = plan.energy_efficiency
    history, sca_its = [ee], []
    for _ in range(max_outer):
        traj = subproblem2(s, plan, q, v, users, max_sca=max_sca)
        log.add(traj.solver)
        sca_its.append(len(traj.history) - 1)
        new_plan = power.subproblem1(s, traj.positions, traj.velocities, users)
        log.add(new_plan.solver)
        # keep the better of the re-optimised and the previous powers on the new trajectory
        old_powers = _replan_on(plan, s, traj.positions, traj.velocities, users)
        if _worse(new_plan, old_powers):
            new_plan = old_powers
        if _worse(new_plan, plan):
            break
        gain = (new_plan.energy_efficiency - ee) / ee
        less_short = total_shortfall(new_plan) < total_shortfall(plan) - _SHORTFALL_TOL
        q, v, plan, ee = traj.positions, traj.velocities, new_plan, new_plan.energy_efficiency
        history.append(ee)
        if gain < tol and not less_short:
            break
    return Algorithm3Result(q, v, plan, ee, history, sca_its, time.perf_counter() - t0, solver=log)


def _replan_on(plan: power.PowerPlan, scenario: Any, positions: NDArray[np.float64],
               velocities: NDArray[np.float64], users: NDArray[np.float64]) -> power.PowerPlan:
    """``plan``'s powers and schedule on another trajectory (within its limits there)."""
    return power.plan_on_schedule(scenario, positions, velocities, users, plan.counts,
                                    plan.power_per_subcarrier,
                                    relaxed_energy_efficiency=plan.relaxed_energy_efficiency)


# -- beyond the paper: joint refinement of trajectory and power ------------------------------------
class _JointSca(_FlightSca):
    """One convex step over trajectory, velocity AND per-subcarrier powers (schedule fixed).

    The rate of a scheduled (slot, user) pair is W log2(1 + gamma0 p / d^2). With a slack
    S >= H^2 + ||q - w_k||^2 (convex) it is at least W [log2(S + gamma0 p) - log2 S], jointly
    concave in (p, S) except for -log2 S, which is convex and replaced by its tangent at S_j (a
    global under-estimator, tight at S_j). The leakage limit becomes p <= gamma_tol zeta / gamma0
    with zeta the squared distance kept by the S-procedure cone (now with zeta a variable; the
    cone stays convex because both of its sides are affine). Flight-power slack, speed,
    acceleration, end point, C4, C5 and C6 are as in sub-problem 2.
    """

    def __init__(self, scenario: Any, counts: NDArray[np.int64], user_xy: NDArray[np.float64]) -> None:
        import cvxpy as cp

        s = scenario
        c = model.SlotConstants.from_scenario(s)
        self.s, self.c = s, c
        n, k = counts.shape
        self.n, self.k = n, k
        self.slot_idx, self.user_idx = np.nonzero(counts > 0)
        m = len(self.slot_idx)
        self.counts = counts
        cnt = counts[self.slot_idx, self.user_idx].astype(np.float64)
        self.users = user_xy / _POS
        eve = np.asarray(c.eve_xy) / _POS
        h2 = (c.altitude_m / _POS) ** 2
        g0 = c.gamma0 / _POS ** 2                                   # pos-units^2 per W

        self.p = cp.Variable(m, nonneg=True)                        # W per subcarrier
        self.dist = cp.Variable(m)                                  # S, pos-units^2
        self.zeta = cp.Variable(n)
        self.varpi = cp.Variable(n, nonneg=True)
        self.eta = cp.Parameter(nonneg=True)
        self.dist_j = cp.Parameter(m, pos=True)
        self.inv_dist_j = cp.Parameter(m, pos=True)
        self.log_dist_j = cp.Parameter(m)
        self.g = cp.Parameter((n, 2))
        self.g2 = cp.Parameter(n)
        # per-slot transmit power as a sparse sum over the scheduled pairs
        a = np.zeros((n, m))
        a[self.slot_idx, np.arange(m)] = cnt
        p_comm = a @ self.p
        cons, pbar = self._flight(cp, p_comm)
        cons.append(p_comm <= c.peak_power_w)
        # distance slack and rate surrogate
        qm = self.q[self.slot_idx]
        cons.append(cp.sum(cp.square(qm - self.users[self.user_idx]), axis=1) + h2 <= self.dist)
        rate = cp.multiply(cnt * c.subcarrier_hz / _LN2 / _RATE,
                           cp.log(self.dist + g0 * self.p) - self.log_dist_j
                           - cp.multiply(self.inv_dist_j, self.dist) + 1.0)
        self.rate = rate
        # leakage: p <= gamma_tol zeta / gamma0 and the S-procedure cone with zeta variable
        cons.append(self.p <= c.gamma_tol * self.zeta[self.slot_idx] / g0)
        lam = 2.0 * cp.sum(cp.multiply(self.g, self.q - eve), axis=1) + self.g2 + h2
        cons.append(self._s_procedure(cp, self.q - eve, lam, self.zeta, self.varpi, c.eve_radius_m))
        self.rate_floor = cp.Parameter(k, nonneg=True)
        self.rate_floor.value = _rate_floor(s, None, k)
        if s.r_min_bps > 0:
            for kk in range(k):
                mine = np.flatnonzero(self.user_idx == kk)
                if len(mine):
                    cons.append(cp.sum(rate[mine]) >= self.rate_floor[kk])
        self.rlb = cp.sum(rate)
        self.problem = cp.Problem(cp.Maximize(self.rlb - self.eta * _POWER / _RATE * cp.sum(pbar)), cons)

    def set_point(self, q_j: NDArray[np.float64], v_j: NDArray[np.float64],
                  mean_rate_bps: ArrayLike | None = None) -> None:
        """Expansion point as in :meth:`_Sca.set_point` (the powers' is not needed: the rate
        surrogate is concave in them)."""
        c = self.c
        self._set_flight_point(v_j)
        self.rate_floor.value = _rate_floor(self.s, mean_rate_bps, self.k)
        qm = q_j[self.slot_idx] / _POS
        w = self.users[self.user_idx]
        d = squared_distance_xy(qm[:, 0] - w[:, 0], qm[:, 1] - w[:, 1], c.altitude_m / _POS)
        self.dist_j.value = d
        self.inv_dist_j.value = 1.0 / d
        self.log_dist_j.value = np.log(d)
        g = q_j / _POS - np.asarray(c.eve_xy) / _POS
        self.g.value = g
        self.g2.value = -np.sum(g * g, axis=1)

    def solution(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        pk = np.zeros((self.n, self.k))
        pk[self.slot_idx, self.user_idx] = np.maximum(np.asarray(self.p.value), 0.0)
        return np.asarray(self.q.value) * _POS, np.asarray(self.v.value) * _VEL, pk


@dataclass
class JointResult(MissionPlan):
    """Output of :func:`joint_refinement`."""

    start_energy_efficiency: float
    history: list[float]
    wall_s: float
    solver: power.SolverLog = field(default_factory=power.SolverLog)   # of the joint steps only


def joint_refinement(scenario: Any, start: Algorithm3Result, user_xy: ArrayLike | None = None, *,
                     tol: float = 1e-4, max_sca: int = 30, inner_tol: float = 1e-6,
                     max_inner: int = 20) -> JointResult:
    """Beyond the paper: SCA over trajectory, velocity and power together from Algorithm 3's plan.

    Algorithm 3 fixes the powers while the trajectory moves, so the trajectory can only retreat
    from the eavesdropper; moving both lets the UAV trade distance for power (spec §16). The
    schedule is kept. Every step is feasible for the true problem and the true EE is
    non-decreasing, so the result never scores below the start. The new powers are clipped into
    the exact leakage cap and slot budget (the solver's last-digit excess). A step whose solves
    fail on every retry ends the refinement at the last iterate (at worst Algorithm 3's plan),
    counted in ``solver``.
    """
    t0 = time.perf_counter()
    s = scenario
    users = np.asarray(s.user_xy if user_xy is None else user_xy, dtype=np.float64)
    q, v, plan = start.positions.copy(), start.velocities.copy(), start.plan
    ee = plan.energy_efficiency
    history = [ee]
    sca = _JointSca(s, plan.counts, users)
    for _ in range(max_sca):
        sca.set_point(q, v, plan.mean_rate_bps)
        sol, _ = sca.dinkelbach(ee, inner_tol, max_inner)
        if sol is None:
            break
        _, v_new, pk = sol
        q_new = integrate_and_check(s, v_new)
        if q_new is None:
            break
        new_plan = power.plan_on_schedule(s, q_new, v_new, users, plan.counts, pk,
                                            relaxed_energy_efficiency=plan.relaxed_energy_efficiency)
        if new_plan.energy_efficiency <= ee or not rates_kept(s.r_min_bps, new_plan.mean_rate_bps,
                                                                plan.mean_rate_bps):
            break
        gain = (new_plan.energy_efficiency - ee) / ee
        q, v, plan, ee = q_new, v_new, new_plan, new_plan.energy_efficiency
        history.append(ee)
        if gain < tol:
            break
    return JointResult(q, v, plan, ee, start.energy_efficiency, history, time.perf_counter() - t0, solver=sca.log)
