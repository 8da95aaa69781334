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
  slots whose power needs more than the altitude (D_req > H^2, else it is inactive). With J >= 1
  eavesdropper discs (extension) C7 must hold against every disc, so there is one S-procedure
  block per eavesdropper disc (x_j, r_j), each with its own multiplier varpi_j and its own tangent
  Lambda_j of ||q - w_j||^2 at the expansion point; D_req is the slot's power's, the same for every
  disc, so the active slots are shared. A disc that no admissible flight can bring within the
  distance that the peak power needs (:func:`_constraining_discs`) can never bind and gets no block;
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

Each convex step is a cvxpy problem written with :class:`cvxpy.Parameter` for everything that
changes between solves (the expansion point, eta, the plan's powers and schedule weights, the users'
positions, the eavesdropper discs' centres and radii), so that it is DPP: cvxpy compiles it to
Clarabel's cone program once and later solves only substitute the new parameter values. The
compiled problems are cached by what their structure depends on (:func:`_model`): sub-problem 2's
by (N, K), the number J of eavesdropper discs (not where they are) and the scenario's other
constants, so one compile serves every SCA step, Algorithm 3 iteration and layout of a scenario
(drawn discs included); the joint step's also by the slots its scheduled pairs are in (one pair
per slot on most layouts). The cones are written in
compact forms with the same feasible sets (see :class:`_FlightSca`, :class:`_Sca`,
:class:`_JointSca`), which roughly halves Clarabel's work per solve. The joint refinement's step
(beyond the paper) maximises its surrogate ratio in one solve by the Charnes-Cooper transform
instead of a Dinkelbach loop (:class:`_JointSca`); sub-problem 2 keeps the spec's Dinkelbach.

Algorithm 3 alternates :func:`baselines.cai2019.power.subproblem1` and :func:`subproblem2` from the
straight line until the energy efficiency improves by less than a relative 1e-3 or 10 outer
iterations; every iteration's EE is recorded. Plans are ranked by their total R_min shortfall
first, then by EE (the same as by EE when R_min is met). All energy efficiencies are evaluated by
:func:`secure_env.core.uav_ofdma.trajectory_outcome`, the env's own metric code.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core import uav_ofdma as model
from secure_env.core.flight import flight_power, induced_slack
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
#: Clarabel settings of every attempt: iterative refinement of each KKT solve stops at a relative
#: 1e-10 (Clarabel's default 1e-13 costs about a third of a solve here; the interior-point
#: tolerances stay at 1e-8, a hundred times coarser)
_SETTINGS: dict[str, Any] = {"iterative_refinement_reltol": 1e-10, "iterative_refinement_abstol": 1e-10}
#: cvxpy's canonicalization backend for the (one-off) compile of a convex step (sub-problem 2's;
#: the joint step's compiles in about half the time with :data:`_JOINT_CANON_BACKEND`, same data)
_CANON_BACKEND = "SCIPY"
_JOINT_CANON_BACKEND = "CPP"


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


#: compiled convex steps (:class:`_Model`), least recently used first (see :func:`_model`)
_MODELS: OrderedDict[tuple[Any, ...], "_Model"] = OrderedDict()
#: how many compiled steps are kept (each holds the cvxpy problem, its parameter map and the last
#: Clarabel solver, about a MB)
_MODELS_MAX = 8


class _Model:
    """A convex step's cvxpy problem, compiled on its first solve and then re-solved with new
    parameter values (cvxpy keeps the DPP parameter map: no recompilation); its variables and
    parameters as attributes. ``owner`` is the step whose parameter values it holds."""

    problem: Any
    owner: Any = None         # the step whose parameter values the problem holds
    solver_of: Any = None     # the step whose data cvxpy's cached Clarabel solver was built for


def _model(key: tuple[Any, ...], build: Any) -> _Model:
    """The cached :class:`_Model` of ``key`` (made by ``build()`` the first time), per thread.

    The key names everything the problem's structure and constants depend on (its shape and the
    scenario's numbers that are not parameters), so that the same problem is compiled once for
    every layout, iteration and call that share them."""
    key = (threading.get_ident(), *key)
    m = _MODELS.get(key)
    if m is None:
        m = _MODELS[key] = build()
        while len(_MODELS) > _MODELS_MAX:
            _MODELS.popitem(last=False)
    else:
        _MODELS.move_to_end(key)
    return m


def _scenario_key(scenario: Any, num_discs: int) -> tuple[Any, ...]:
    """The scenario numbers a compiled step depends on: all but the users' positions and the
    eavesdropper discs, of which only their number ``num_discs`` (the S-procedure blocks) counts:
    their centres and radii are parameters."""
    s = scenario
    c = dataclasses.replace(model.SlotConstants.from_scenario(s), eve_discs=())
    return (c, num_discs, s.num_slots, tuple(map(float, s.start_xy)),
            tuple(map(float, s.end_xy)), s.r_min_bps > 0)


def _constraining_discs(scenario: Any, c: model.SlotConstants) -> NDArray[np.float64]:
    """The eavesdropper discs (J', 3) in pos units (x, y, r) that get an S-procedure block: those
    that may bind on some admissible flight (extension: J >= 1 discs), in the scenario's order.

    A slot's per-subcarrier power is at most P_peak, so C7 against disc j holds wherever the
    horizontal gap ||q - w_j|| - r_j is at least sqrt(P_peak gamma0 / gamma_tol - H^2). Any
    admissible q[n] lies within v_max T n of q_0 and v_max T (N - n) of q_F, so the gap there is at
    least max(||w_j - q_0|| - v_max T n, ||w_j - q_F|| - v_max T (N - n)) - r_j; a disc whose bound
    clears the distance at every slot can never bind, and its block (vacuous on the whole feasible
    set) is left out. It stays in the leakage cap of sub-problem 1 and in every check. The closest
    disc is kept if none may bind, so that J' >= 1 (a single disc is always kept)."""
    s = scenario
    discs = np.asarray(c.eve_discs, dtype=np.float64).reshape(-1, 3)
    n = s.num_slots
    hop = c.v_max_mps * c.slot_s
    out = np.linalg.norm(discs[:, None, :2] - np.asarray(s.start_xy, dtype=np.float64), axis=-1) \
        - hop * np.arange(1, n + 1)[None]
    back = np.linalg.norm(discs[:, None, :2] - np.asarray(s.end_xy, dtype=np.float64), axis=-1) \
        - hop * np.arange(n - 1, -1, -1)[None]
    gap = np.min(np.maximum(out, back), axis=1) - discs[:, 2]          # (J,) m, a lower bound
    need = math.sqrt(max(c.peak_power_w * c.gamma0 / c.gamma_tol - c.altitude_m ** 2, 0.0))
    keep = gap <= need * (1.0 + 1e-6) + 1.0
    if not keep.any():
        keep[int(np.argmin(gap))] = True
    return discs[keep] / _POS


@dataclass
class _Value:
    """A surrogate coefficient that reaches the compiled problem only through derived parameters,
    held like a cvxpy Parameter (``.value``)."""

    value: Any = None


class _FlightSca:
    """What both SCA problems share: kinematics (C8-C12), the flight-power slack (47)-(50), the
    surrogate total power Pbar with C5, the expansion point of the slack, and the solve call.

    Each step's cvxpy problem is built with :class:`cvxpy.Parameter` for everything that changes
    between solves (expansion point, eta, the plan's powers, the users) and is kept in
    :func:`_model`'s cache, so it is compiled once per problem shape, not once per step.
    The problem is written compactly (the same feasible set with fewer variables and cones):
    the positions q are the only kinematic variables, the velocities their differences
    v[n] = (q[n] - q[n-1]) / T (C8 then holds by construction); a speed variable s >= ||v|| carries
    the speed limit and the epigraphs t2 >= s^2, t3 >= s^3 (as t2^2 <= s t3) of Pbar's V^2 and
    V^3 terms; chi^-2 <= Phi is root^2 <= Phi and chi root >= 1. Pbar's V^2 and V^3 terms enter
    the objective and C5 through t2 and t3, which are tight at the optimum (eta > 0 presses them
    down), so the optimum is that of the plain form. Pbar itself is evaluated from the solution's
    velocities (:meth:`_pbar`)."""

    #: cvxpy's canonicalization backend of the step's compile
    _canon_backend = _CANON_BACKEND

    def _flight(self, cp: Any, m: _Model, tau: Any = None) -> tuple[list[Any], Any]:
        """Variables q and chi (and the cones' auxiliaries), the velocity expression v and the
        parameters chi_j, v_j, phi_const into ``m``; returns (constraints, the part of Pbar (N,)
        that depends on the flight, in kW).

        ``tau``: None, or the Charnes-Cooper scale (a scalar variable) of a homogenised problem
        (:class:`_JointSca`): every variable then stands for tau times its value and every
        constant of a constraint is multiplied by tau (the perspective of the same set)."""
        s, c, n = self.s, self.c, self.n
        one: Any = 1.0 if tau is None else tau
        rotor = c.rotor
        m.q = cp.Variable((n, 2))
        m.chi = cp.Variable(n)
        speed, t2, t3, root = cp.Variable(n), cp.Variable(n), cp.Variable(n), cp.Variable(n)
        m.chi_j = cp.Parameter(n, nonneg=True)
        m.v_j = cp.Parameter((n, 2))
        m.phi_const = cp.Parameter(n)
        q = m.q
        q0 = np.asarray(s.start_xy, dtype=np.float64) / _POS
        qf = np.asarray(s.end_xy, dtype=np.float64) / _POS
        step = s.slot_s * _VEL / _POS
        m.v = v = cp.vstack([(q[0:1] - one * q0[None]) / step, (q[1:] - q[:-1]) / step])
        cons = [q[n - 1] == one * qf,
                cp.SOC(speed, v, axis=1), speed <= s.v_max_mps / _VEL * (1 - _MARGIN) * one]
        if n > 1:
            cons.append(cp.SOC(one * np.full(n - 1, c.dv_max_mps / _VEL * (1 - _MARGIN)), v[1:] - v[:-1], axis=1))
        # V^2 <= t2 and V^3 <= t3 (as t2^2 <= V t3)
        cons.append(cp.SOC(t2 + one, cp.vstack([2.0 * speed, t2 - one]), axis=0))
        cons.append(cp.SOC(speed + t3, cp.vstack([2.0 * t2, speed - t3]), axis=0))
        # flight-power slack (49)-(50): chi^-2 <= Phi_j as root^2 <= Phi_j and chi root >= 1
        scale_v = _VEL ** 2 / rotor.induced_velocity_mps ** 2
        phi = (2.0 * cp.multiply(m.chi_j, m.chi)
               + 2.0 * scale_v * cp.sum(cp.multiply(m.v_j, v), axis=1)
               + (m.phi_const if tau is None else m.phi_const * tau))
        cons.append(cp.SOC(phi + one, cp.vstack([2.0 * root, phi - one]), axis=0))
        cons.append(cp.SOC(m.chi + root, cp.vstack([one * np.full(n, 2.0), m.chi - root]), axis=0))
        flight = (3.0 * rotor.profile_power_w * _VEL ** 2 / rotor.tip_speed_mps ** 2 / _POWER * t2
                  + rotor.induced_power_w / _POWER * m.chi
                  + rotor.parasite_coeff * _VEL ** 3 / _POWER * t3)
        return cons, flight

    def _pbar(self, p_comm_w: NDArray[np.float64]) -> NDArray[np.float64]:
        """Pbar (N,) in W at the current solution (the true V^2, V^3 of its velocities)."""
        c = self.c
        rotor = c.rotor
        vv = self._value(self.m.v) * _VEL
        speed2 = np.sum(vv * vv, axis=1)
        return (c.circuit_power_w + rotor.profile_power_w + p_comm_w
                + 3.0 * rotor.profile_power_w * speed2 / rotor.tip_speed_mps ** 2
                + rotor.induced_power_w * self._value(self.m.chi)
                + rotor.parasite_coeff * speed2 ** 1.5)

    def _value(self, x: Any) -> NDArray[np.float64]:
        """The value of variable or expression ``x`` at the current solution (in the problem's
        units; a homogenised step divides by its scale, see :class:`_JointSca`)."""
        return np.asarray(x.value)

    def _set(self, param: Any, value: Any) -> None:
        """Give ``param`` of the shared model this step's ``value`` (kept for :meth:`solve`)."""
        if self.m.owner is not self:
            self.m.owner = None            # another step's values are no longer complete
        self._values[id(param)] = (param, value)
        param.value = value

    def _own(self) -> None:
        """Load this step's parameter values into the shared model if another step used it last;
        a step's first solve starts a fresh Clarabel solver (see :meth:`_forget_solver`)."""
        if self.m.owner is not self:
            for param, value in self._values.values():
                param.value = value
            if self.m.solver_of is not self:
                self._forget_solver()
            self.m.owner = self

    def _forget_solver(self) -> None:
        """Drop the Clarabel solver cvxpy keeps for the shared problem, so that this step's first
        solve builds its own, as it did when every step had its own problem: Clarabel keeps the
        scaling of the data it was built with when it is updated, so a solver left by another
        step (another layout) would make this step's plan depend on what was planned before."""
        cache = getattr(self.problem, "_solver_cache", None)
        if isinstance(cache, dict):
            cache.clear()
        self.m.solver_of = self

    def _set_flight_point(self, v_j: NDArray[np.float64]) -> None:
        c = self.c
        chi_j = induced_slack(np.linalg.norm(v_j, axis=1), c.rotor)
        vv = v_j / _VEL
        scale_v = _VEL ** 2 / c.rotor.induced_velocity_mps ** 2
        self._set(self.chi_j, chi_j)
        self._set(self.v_j, vv)
        self._set(self.phi_const, -chi_j ** 2 - scale_v * np.sum(vv * vv, axis=1))

    # the shared model's handles, as attributes of the step
    q = property(lambda self: self.m.q)
    v = property(lambda self: self.m.v)
    chi = property(lambda self: self.m.chi)
    chi_j = property(lambda self: self.m.chi_j)
    v_j = property(lambda self: self.m.v_j)
    phi_const = property(lambda self: self.m.phi_const)
    eta = property(lambda self: self.m.eta)
    problem = property(lambda self: self.m.problem)

    @staticmethod
    def _s_procedure(cp: Any, x: Any, lam: Any, zeta_term: Any, varpi: Any, radius_sq: Any,
                     one: Any = 1.0) -> Any:
        """||x||^2 <= (one + varpi)(lam - zeta_term - varpi r^2) as a rotated second-order cone,
        x = q - w_E (rows) of one eavesdropper disc, lam the tangent (44) plus H^2, ``radius_sq``
        r^2 (pos units; a parameter); ``one`` is 1, or the Charnes-Cooper scale of a homogenised
        problem (see :meth:`_flight`)."""
        cn = lam - zeta_term - varpi * radius_sq
        y = one + varpi
        return cp.SOC(y + cn, cp.vstack([2.0 * x[:, 0], 2.0 * x[:, 1], y - cn]), axis=0)

    def solve(self, eta: float) -> bool:
        """Solve the convex step at ``eta``: the settings of :data:`_ATTEMPTS` in turn, from the
        ones that solved last, until one ends optimal (each further attempt counts as a retry in
        ``log``). False if none did. An inaccurate optimum is accepted: its caller checks the
        step against the true limits."""
        import cvxpy as cp

        self._own()
        self._set_eta(max(eta, 0.0))
        for tries in range(len(_ATTEMPTS)):
            index = (self._attempt + tries) % len(_ATTEMPTS)
            self.log.retries += tries > 0
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                    self.problem.solve(solver=cp.CLARABEL, canon_backend=self._canon_backend,
                                       **_SETTINGS, **_ATTEMPTS[index])
            except cp.error.SolverError:
                continue
            if self.problem.status in ("optimal", "optimal_inaccurate"):
                self._attempt = index
                return True
        return False

    def _set_eta(self, eta: float) -> None:
        self.m.eta.value = eta

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


class _Sca(_FlightSca):
    """The convex problem (53) as a cvxpy problem with the expansion point, eta, the plan's powers
    and the users as parameters (one compiled problem per (N, K) and scenario).

    The rate lower bound sum_n (a_nk - b_nk ||q_n - w_k||^2) enters the objective as the quadratic
    -sum_n B_n ||q_n||^2 + 2 sum_n c_n . q_n (B_n = sum_k b_nk, c_n = sum_k b_nk w_k, constants
    dropped) and C6 as one cone per user, ||sqrt(b_k) (q - w_k)|| <= sqrt(sum_n a_nk - floor_k).
    The leakage cones (one per eavesdropper disc that may bind, :func:`_constraining_discs`) are
    kept for every slot; a slot whose power needs no more than the altitude (D_req <= H^2, where
    the paper's constraint is inactive against every disc: D_req is the slot's, whatever the disc)
    gets vacuous cones (x = 0, lam = 1). Each disc's centre (times the mask), radius and tangent are
    parameters, so the compiled problem depends on the number of discs only."""

    def __init__(self, scenario: Any, plan: power.PowerPlan, user_xy: NDArray[np.float64]) -> None:
        s = scenario
        c = model.SlotConstants.from_scenario(s)
        self.s, self.c = s, c
        n, k = plan.counts.shape
        self.n, self.k = n, k
        self.log = power.SolverLog()
        self._attempt = 0          # the entry of _ATTEMPTS that solved last
        self._values: dict[int, tuple[Any, Any]] = {}
        self.discs = _constraining_discs(s, c)                     # (J, 3), pos units
        self.j = len(self.discs)
        self.m = _model(("sca", n, k, *_scenario_key(s, self.j)), self._build)
        counts = plan.counts.astype(np.float64)
        pk = plan.power_per_subcarrier
        self.rho = pk * c.gamma0                                    # m^2, (N, K)
        self.cw = counts * c.subcarrier_hz                          # Hz, (N, K)
        self.p_comm = np.sum(counts * pk, axis=1)                   # W, (N,)
        p_hat = np.max(np.where(counts > 0, pk, 0.0), axis=1)
        d_req = p_hat * c.gamma0 / c.gamma_tol                      # m^2 the eavesdropper must keep
        self.users = np.asarray(user_xy, dtype=np.float64) / _POS
        h2 = c.altitude_m ** 2
        # leakage: the slots where it can bind
        self.active = np.flatnonzero(d_req > h2 * (1 + 1e-12))
        self.hd = (h2 - d_req[self.active]) / _POS ** 2
        mask = np.zeros((n, 2))
        mask[self.active] = 1.0
        self._set(self.m.mask, mask)
        for j, (ex, ey, _) in enumerate(self.discs):
            self._set(self.m.eve[j], mask * np.array([ex, ey]))
        self._set(self.m.radius_sq, self.discs[:, 2] ** 2)
        self._set(self.m.headroom, (c.p_max_w - c.circuit_power_w - c.rotor.profile_power_w - self.p_comm) / _POWER)
        self.a_hat, self.b_hat = _Value(), _Value()
        self.rate_floor = _Value(_rate_floor(s, None, k))

    def _build(self) -> _Model:
        import cvxpy as cp

        c, n, k = self.c, self.n, self.k
        m = _Model()
        m.eta = cp.Parameter(nonneg=True)
        cons, flight = self._flight(cp, m)
        m.headroom = cp.Parameter(n)                  # (P_max - P_C - P0 - p_comm) in kW
        cons.append(flight <= m.headroom)
        # leakage: S-procedure in SOC form, one block per eavesdropper disc, vacuous where mask = 0
        m.mask = cp.Parameter((n, 2), nonneg=True)
        m.radius_sq = cp.Parameter(self.j, nonneg=True)                    # r_j^2
        m.eve = [cp.Parameter((n, 2)) for _ in range(self.j)]              # mask w_j
        m.g = [cp.Parameter((n, 2)) for _ in range(self.j)]                # q_j - w_j (0 where inactive)
        # -||q_j - w_j||^2 - 2 (q_j - w_j).w_j + (H^2 - D_req)/L^2 (1 where inactive)
        m.g2 = [cp.Parameter(n) for _ in range(self.j)]
        m.varpi = [cp.Variable(n, nonneg=True) for _ in range(self.j)]
        for j in range(self.j):
            lam = 2.0 * cp.sum(cp.multiply(m.g[j], m.q), axis=1) + m.g2[j]
            cons.append(self._s_procedure(cp, cp.multiply(m.mask, m.q) - m.eve[j], lam, 0.0, m.varpi[j],
                                          m.radius_sq[j]))
        # rate lower bound (46): the objective's quadratic, and C6 per user
        m.quad = cp.Parameter((n, 2), nonneg=True)    # B_n, twice
        m.lin = cp.Parameter((n, 2))                  # c_n
        m.root_b = [cp.Parameter((n, 2), nonneg=True) for _ in range(k)]   # sqrt(b_nk), twice
        m.root_bw = [cp.Parameter((n, 2)) for _ in range(k)]               # sqrt(b_nk) w_k
        m.room = cp.Parameter(k, nonneg=True)         # sqrt(sum_n a_nk - floor_k)
        if self.s.r_min_bps > 0:
            cons += [cp.SOC(m.room[kk], cp.vec(cp.multiply(m.root_b[kk], m.q) - m.root_bw[kk], order="C"))
                     for kk in range(k)]
        rlb = -cp.sum(cp.multiply(m.quad, cp.square(m.q))) + 2.0 * cp.sum(cp.multiply(m.lin, m.q))
        m.problem = cp.Problem(cp.Maximize(rlb - m.eta * (_POWER / _RATE) * cp.sum(flight)), cons)
        return m

    def set_point(self, q_j: NDArray[np.float64], v_j: NDArray[np.float64],
                  mean_rate_bps: ArrayLike | None = None) -> None:
        """Expansion point (positions and velocities in SI units); ``mean_rate_bps`` (K,) the
        users' rates there, where C6 keeps a user short of R_min from falling further (None: C6)."""
        c, m = self.c, self.m
        self._set_flight_point(v_j)
        self.rate_floor.value = _rate_floor(self.s, mean_rate_bps, self.k)
        d2 = squared_distance(q_j, self.users * _POS, c.altitude_m)                                 # (N, K)
        lin = self.rho / (d2 + self.rho) / d2 / _LN2                                                 # 1/m^2
        b = self.cw * lin * _POS ** 2 / _RATE
        a = self.cw * np.log2(1.0 + self.rho / d2) / _RATE + b * (d2 - c.altitude_m ** 2) / _POS ** 2
        self.b_hat.value, self.a_hat.value = b, a
        bsum = np.sum(b, axis=1)
        self._set(m.quad, np.repeat(bsum[:, None], 2, axis=1))
        self._set(m.lin, b @ self.users)
        root_b = np.sqrt(b)
        for kk in range(self.k):
            self._set(m.root_b[kk], np.repeat(root_b[:, kk, None], 2, axis=1))
            self._set(m.root_bw[kk], root_b[:, kk, None] * self.users[kk])
        self._set(m.room, np.sqrt(np.maximum(np.sum(a, axis=0) - self.rate_floor.value, 0.0)))
        # each disc's tangent Lambda_j of ||q - w_j||^2 at q_j, 2 g.q - ||g||^2 - 2 g.w_j with g = q_j - w_j
        for j, (ex, ey, _) in enumerate(self.discs):
            g = np.zeros((self.n, 2))
            g2 = np.ones(self.n)
            if len(self.active):
                ga = q_j[self.active] / _POS - np.array([ex, ey])
                g[self.active] = ga
                g2[self.active] = -np.sum(ga * ga, axis=1) - 2.0 * (ga @ np.array([ex, ey])) + self.hd
            self._set(m.g[j], g)
            self._set(m.g2[j], g2)

    def solution(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return np.asarray(self.q.value) * _POS, np.asarray(self.v.value) * _VEL

    def surrogate_ratio(self) -> tuple[float, float]:
        """(sum R_lb in bit/s, sum Pbar in W) at the current solution."""
        q = np.asarray(self.q.value)
        x = np.sum((q[:, None, :] - self.users[None]) ** 2, axis=-1)           # (N, K), pos units
        rlb = float(np.sum(self.a_hat.value) - np.sum(self.b_hat.value * x))
        return rlb * _RATE, float(np.sum(self._pbar(self.p_comm)))


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
    with zeta the squared distance kept by the S-procedure cones (now with zeta a variable; the
    cone stays convex because both of its sides are affine): one cone per eavesdropper disc that
    may bind (:func:`_constraining_discs`), each with its own multiplier varpi_j and tangent
    Lambda_j and the same zeta, so zeta is at most every disc's distance. Flight-power slack, speed,
    acceleration, end point, C4, C5 and C6 are as in sub-problem 2.

    The step maximises the ratio sum R_lb / sum Pbar over this convex set in ONE solve, by the
    Charnes-Cooper transform instead of a Dinkelbach loop (beyond the spec's Algorithm 2, which
    the joint refinement is not part of): in the conic form both sums are affine in the
    variables (R_lb through the log epigraph L, Pbar through the epigraphs t2, t3, chi), so with
    y = tau x, tau = P_ref / Pbar(x) the step is max R_hom(y, tau) s.t. Pbar_hom(y, tau) <= P_ref,
    (y, tau) in the homogenised cones (every constant of a constraint times tau: the perspective
    of the set), tau >= 0, and x = y / tau. The optimum is the surrogate's best ratio, which
    Dinkelbach reaches to its tolerance after two or three solves (the plans agree within a few
    1e-6 of EE; see tests/test_planner_speedup.py). The epigraphs are tight at the optimum as
    before: slack in one of them would leave Pbar_hom < P_ref, and scaling (y, tau) up would raise
    R_hom > 0. P_ref (a parameter, the flight power at the expansion point) only sets the scale of
    tau (about 1).

    The compiled problem depends only on which slots the scheduled pairs are in (one pair per
    slot on most layouts), so it is shared across layouts: each pair's user position, subcarrier
    count and weights are parameters; log(S + gamma0 p) is a variable L under one exponential cone
    per pair, weighted in the objective and, per user, in C6 (weight 0 for another user's pair).
    For Clarabel's sake the powers are in units of P_peak / N_F and the cone's argument is
    divided by sigma = gamma0 P_peak / N_F (log(sigma) moves into C6's constants).
    """

    _canon_backend = _JOINT_CANON_BACKEND

    def __init__(self, scenario: Any, counts: NDArray[np.int64], user_xy: NDArray[np.float64]) -> None:
        s = scenario
        c = model.SlotConstants.from_scenario(s)
        self.s, self.c = s, c
        n, k = counts.shape
        self.n, self.k = n, k
        self.log = power.SolverLog()
        self._attempt = 0          # the entry of _ATTEMPTS that solved last
        self._values: dict[int, tuple[Any, Any]] = {}
        self.discs = _constraining_discs(s, c)                     # (J, 3), pos units
        self.j = len(self.discs)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.slot_idx, self.user_idx = np.nonzero(self.counts > 0)
        self.users = np.asarray(user_xy, dtype=np.float64) / _POS
        self.cnt = self.counts[self.slot_idx, self.user_idx].astype(np.float64)
        self.weight = self.cnt * c.subcarrier_hz / _LN2 / _RATE       # rate units per nat
        self.p_unit = max(c.peak_power_w, 1e-6) / c.num_subcarriers  # W: the powers' unit
        self.sigma = c.gamma0 / _POS ** 2 * self.p_unit              # log(S + gamma0 p) = log(sigma) + L
        m = self.m = _model(("joint-cc", n, k, self.slot_idx.tobytes(), *_scenario_key(s, self.j)), self._build)
        self.mine = (self.user_idx[None, :] == np.arange(k)[:, None]).astype(np.float64)   # (K, M)
        self._set(m.user_xy, self.users[self.user_idx])
        self._set(m.count, self.cnt)
        self._set(m.weight, self.weight)
        self._set(m.user_weight, self.mine * self.weight)
        for j, (ex, ey, _) in enumerate(self.discs):
            self._set(m.eve[j], np.tile([ex, ey], (n, 1)))
        self._set(m.radius_sq, self.discs[:, 2] ** 2)
        self.rate_floor = _Value(_rate_floor(s, None, k))

    def _build(self) -> _Model:
        import cvxpy as cp
        import scipy.sparse as sparse

        c, n, k = self.c, self.n, self.k
        m = _Model()
        slot_idx = self.slot_idx
        mm = len(slot_idx)
        h2 = (c.altitude_m / _POS) ** 2
        p_unit, sigma = self.p_unit, self.sigma
        rotor = c.rotor
        # every variable is tau times its value (Charnes-Cooper)
        m.tau = tau = cp.Variable(nonneg=True)
        m.p = cp.Variable(mm, nonneg=True)                          # per subcarrier, in p_unit
        m.dist = cp.Variable(mm)                                    # S, pos-units^2
        m.log_term = cp.Variable(mm)                                # L <= log(S + gamma0 p)
        m.zeta = cp.Variable(n)
        m.varpi = [cp.Variable(n, nonneg=True) for _ in range(self.j)]   # one per disc
        m.user_xy = cp.Parameter((mm, 2))                           # each pair's user
        m.count = cp.Parameter(mm, nonneg=True)                     # each pair's subcarriers
        m.weight = cp.Parameter(mm, nonneg=True)                    # W cnt / (ln2 rate unit)
        m.user_weight = cp.Parameter((k, mm), nonneg=True)          # weight, on user k's pairs only
        m.slope = cp.Parameter(mm, nonneg=True)                     # weight / S_j (the tangent)
        m.user_slope = cp.Parameter((k, mm), nonneg=True)
        m.rate_rhs = cp.Parameter(k)                                # floor_k minus the tangents' constants
        m.rate_const = cp.Parameter()                               # the tangents' constants, summed
        m.p_ref = cp.Parameter(pos=True)                            # kW: the denominator's scale
        m.radius_sq = cp.Parameter(self.j, nonneg=True)             # r_j^2
        m.eve = [cp.Parameter((n, 2)) for _ in range(self.j)]       # w_j, each row
        m.g = [cp.Parameter((n, 2)) for _ in range(self.j)]         # q_j - w_j
        m.g2 = [cp.Parameter(n) for _ in range(self.j)]             # -||g||^2 - 2 g.w_j + H^2
        # per-slot transmit power as a sparse sum over the scheduled pairs
        slots = sparse.csr_matrix((np.ones(mm), (slot_idx, np.arange(mm))), shape=(n, mm))
        p_comm = p_unit * (slots @ cp.multiply(m.count, m.p))
        cons, flight = self._flight(cp, m, tau)
        cons.append(flight + p_comm / _POWER
                    <= (c.p_max_w - c.circuit_power_w - rotor.profile_power_w) / _POWER * tau)
        cons.append(p_comm <= c.peak_power_w * tau)
        # distance slack, ||q - w||^2 <= S - H^2 as a rotated cone, and L <= log(S + gamma0 p)
        diff = m.q[slot_idx] - m.user_xy * tau
        cons.append(cp.SOC(m.dist - (h2 - 1.0) * tau,
                           cp.vstack([2.0 * diff[:, 0], 2.0 * diff[:, 1], m.dist - (h2 + 1.0) * tau]), axis=0))
        cons.append(cp.constraints.ExpCone(m.log_term, tau * np.ones(mm), m.dist / sigma + m.p))
        # leakage: p <= gamma_tol zeta / gamma0 and the S-procedure cone with zeta variable
        cons.append(m.p <= c.gamma_tol / sigma * m.zeta[slot_idx])
        for j in range(self.j):
            lam = 2.0 * cp.sum(cp.multiply(m.g[j], m.q), axis=1) + cp.multiply(m.g2[j], tau)
            cons.append(self._s_procedure(cp, m.q - tau * m.eve[j], lam, m.zeta, m.varpi[j], m.radius_sq[j], tau))
        if self.s.r_min_bps > 0:
            for kk in range(k):
                cons.append(m.user_weight[kk] @ m.log_term - m.user_slope[kk] @ m.dist >= m.rate_rhs[kk] * tau)
        # the ratio's denominator, sum Pbar in kW, at most P_ref; its numerator, sum R_lb, maximised
        fixed = n * (c.circuit_power_w + rotor.profile_power_w) / _POWER
        cons.append(cp.sum(flight) + p_unit / _POWER * (m.count @ m.p) + fixed * tau <= m.p_ref)
        rate = m.weight @ m.log_term - m.slope @ m.dist + m.rate_const * tau
        m.problem = cp.Problem(cp.Maximize(rate), cons)
        return m

    def set_point(self, q_j: NDArray[np.float64], v_j: NDArray[np.float64],
                  mean_rate_bps: ArrayLike | None = None) -> None:
        """Expansion point as in :meth:`_Sca.set_point` (the powers' is not needed: the rate
        surrogate is concave in them)."""
        c, m = self.c, self.m
        self._set_flight_point(v_j)
        self.rate_floor.value = _rate_floor(self.s, mean_rate_bps, self.k)
        qm = q_j[self.slot_idx] / _POS
        w = self.users[self.user_idx]
        d = squared_distance_xy(qm[:, 0] - w[:, 0], qm[:, 1] - w[:, 1], c.altitude_m / _POS)
        self.log_dist_j = np.log(d)
        self.inv_dist_j = 1.0 / d
        slope = self.weight * self.inv_dist_j
        self._set(m.slope, slope)
        self._set(m.user_slope, self.mine * slope)
        # sum over a set of pairs of weight (L - log S_j - S / S_j + 1 + log sigma): the rate surrogate
        tangent = self.weight * (1.0 - self.log_dist_j + math.log(self.sigma))
        self._set(m.rate_const, float(np.sum(tangent)))
        # C6: sum over user k's pairs >= floor_k
        const = self.mine @ tangent
        self._set(m.rate_rhs, np.where(self.mine.any(axis=1), self.rate_floor.value - const, -1.0))
        # each disc's tangent Lambda_j of ||q - w_j||^2 at q_j, plus H^2
        h2 = (c.altitude_m / _POS) ** 2
        for j, (ex, ey, _) in enumerate(self.discs):
            g = q_j / _POS - np.array([ex, ey])
            self._set(m.g[j], g)
            self._set(m.g2[j], -np.sum(g * g, axis=1) - 2.0 * (g @ np.array([ex, ey])) + h2)
        speed = np.linalg.norm(np.asarray(v_j, dtype=np.float64), axis=1)
        self._set(m.p_ref, float(np.sum(c.circuit_power_w + flight_power(speed, c.rotor))) / _POWER)

    def _set_eta(self, eta: float) -> None:
        """No eta: the homogenised step maximises the ratio itself."""

    def _value(self, x: Any) -> NDArray[np.float64]:
        return np.asarray(x.value) / float(self.m.tau.value)

    def ratio_step(self) -> tuple[Any, int]:
        """Solve the step (retries as in :meth:`solve`). Returns (:meth:`solution`, 1), or
        (None, 0) counted as a fallback in ``log`` when every retry failed or the solver's scale
        tau is not positive (then the SCA stops at its last iterate)."""
        if not self.solve(0.0) or not float(self.m.tau.value) > 0.0:
            self.log.fallbacks += 1
            return None, 0
        return self.solution(), 1

    def _power(self) -> NDArray[np.float64]:
        """The pairs' per-subcarrier powers (W) at the current solution."""
        return self._value(self.m.p) * self.p_unit

    def solution(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        pk = np.zeros((self.n, self.k))
        pk[self.slot_idx, self.user_idx] = np.maximum(self._power(), 0.0)
        return self._value(self.q) * _POS, self._value(self.v) * _VEL, pk

    def surrogate_ratio(self) -> tuple[float, float]:
        """(sum of the rate surrogate in bit/s, sum Pbar in W) at the current solution."""
        c = self.c
        p = self._power()
        dist = self._value(self.m.dist)
        g0 = c.gamma0 / _POS ** 2
        rate = self.weight * (np.log(dist + g0 * p) - self.log_dist_j - self.inv_dist_j * dist + 1.0)
        p_comm = np.bincount(self.slot_idx, weights=self.cnt * p, minlength=self.n)
        return float(np.sum(rate)) * _RATE, float(np.sum(self._pbar(p_comm)))


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

    Each SCA step is one convex solve of the surrogate's best ratio (the Charnes-Cooper form of
    :class:`_JointSca`); it replaced a Dinkelbach loop of two or three solves per step with the
    same steps (within its ``inner_tol``). ``inner_tol`` and ``max_inner``, that loop's settings,
    are accepted for the callers that pass them and have no effect.
    """
    del inner_tol, max_inner       # no inner loop (see above)
    t0 = time.perf_counter()
    s = scenario
    users = np.asarray(s.user_xy if user_xy is None else user_xy, dtype=np.float64)
    q, v, plan = start.positions.copy(), start.velocities.copy(), start.plan
    ee = plan.energy_efficiency
    history = [ee]
    sca = _JointSca(s, plan.counts, users)
    for _ in range(max_sca):
        sca.set_point(q, v, plan.mean_rate_bps)
        sol, _ = sca.ratio_step()
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
