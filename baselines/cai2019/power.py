"""Baselines of Cai et al. 2019: sub-problem 1 (power and scheduling on a fixed trajectory).

Sub-problem 1 (spec §9): for a fixed trajectory, maximise the energy efficiency
sum(bits) / sum(energy) over the subcarrier schedule s and powers p under C1-C7. Solved as in the
paper's Algorithm 1:

* **Dinkelbach** (eqs. (16)-(18)): eta_0 = 0; solve max U - eta U_TP; eta <- U / U_TP; stop when
  U - eta U_TP < tol U_TP. The eta sequence is non-decreasing.
* **Dual decomposition** (eqs. (19)-(29)) of the time-sharing relaxation (15) for each eta:
  Layer 1 is multi-user water-filling clipped at the leakage cap (the spec's §9.6 equivalent
  form, which makes the multiplier of C7 unnecessary) and marginal-benefit scheduling (eqs.
  (23), (25)); C4 and C5 are merged into one per-slot budget min(P_peak, P_max - P_C - P_fly[n])
  whose multiplier is found by bisection per slot (spec §9.8 hint). The R_min multipliers
  lambda_k are updated by the cutting-plane (Kelley) method instead of the subgradient step
  (28): the LP over convex combinations of the per-slot points Layer 1 has produced (the
  Dantzig-Wolfe master) yields lambda as its duals, Layer 1 at that lambda adds each slot's best
  point, until no slot improves (a certified duality gap). The subgradient needs thousands of
  steps and an averaged primal for 1e-3 accuracy (we tried: 3000 steps, 14-38 s, R_min still
  missed); the cutting planes use the same Layer-1 solutions and converge in tens of rounds with
  an exact primal mix. If lambda = 0 already meets every R_min it is optimal (complementary
  slackness) and no LP is solved: the common case at the spec's defaults (§16).
* **Final re-solve** (spec §9.8 hint): the fractional schedule is rounded to whole subcarriers
  (largest remainder), then the powers are re-optimised on that binary schedule by the same
  Dinkelbach and water-filling, with lambda found by Gauss-Seidel bisection (on a fixed schedule
  each user's rate is continuous and increasing in its own multiplier), so that C4-C7 and R_min
  (with the guard band :data:`RATE_MARGIN`) hold exactly. The per-slot budget multiplier of a
  slot shared by several users is bisected from a price at which every active subcarrier's power
  is at most budget / (active subcarriers), so the slot total never exceeds min(P_peak,
  P_max - P_C - P_fly). Where R_min is out of reach on the trajectory (the relaxation's master LP
  then misses it by the least total, its rate rows having priced slacks), the plan keeps every
  other limit and reports each user's shortfall (``PowerPlan.rmin_shortfall_bps``).

The channels are flat across subcarriers (LoS, spec eq. (6)), so all subcarriers of a slot are
interchangeable: the relaxation is solved per slot in terms of the fraction x_k[n] of its
subcarriers each user gets and their common power p_k[n], which is exactly the symmetric
optimum of the per-subcarrier relaxation (a concave problem invariant under permuting a slot's
subcarriers). The reported energy efficiency is computed by
:func:`secure_env.core.uav_ofdma.trajectory_outcome`, the env's own code.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from secure_env.core import uav_ofdma as model
from secure_env.core.flight import flight_power
from secure_env.core.ofdma import squared_distance
from secure_env.core.secrecy import leakage_power_cap, worst_case_disc_distance_sq

_LN2 = math.log(2.0)
#: largest R_min multiplier the re-solve tries; a user still short there cannot reach R_min
#: on its schedule (its power is at the leakage cap or the slot budget everywhere)
LAMBDA_MAX = 1e9
#: planners aim at R_min (1 + RATE_MARGIN): a guard band above the solvers' tolerances (an SCA
#: step's true rates can miss its rate constraint by a few 1e-6) and the env's float32 replay
#: (rates move by about 1e-7), so that a plan with a binding R_min still meets it in the env
RATE_MARGIN = 1e-4
#: the relaxation aims this much above the rate target, room for the rounding to whole subcarriers
ROUNDING_MARGIN = 1e-3
#: the master LP's HiGHS methods: the first, then the others as retries after a failure
_LP_METHODS = ("highs", "highs-ipm", "highs-ds")


@dataclass
class SolverLog:
    """Solver trouble met while planning: ``retries`` (solves repeated with other settings after
    a failure) and ``fallbacks`` (failures no retry fixed, where the algorithm stopped at its last
    feasible iterate instead)."""

    retries: int = 0
    fallbacks: int = 0

    def add(self, other: "SolverLog") -> None:
        self.retries += other.retries
        self.fallbacks += other.fallbacks


@dataclass(frozen=True)
class SlotProblem:
    """Sub-problem 1's constants for a fixed trajectory (all (N,) or (N, K) float arrays).

    ``snr_per_watt`` g_k[n] = beta0 / (N0 W d_k^2[n]); ``cap`` the per-subcarrier leakage power cap
    (that of the closest of the scenario's eavesdropper discs: C7 holds against every disc);
    ``budget`` the per-slot transmit budget min(P_peak, P_max - P_C - P_fly[n]) (>= 0);
    ``fixed_power`` P_C + P_fly[n]; ``rate_target`` N R_min (1 + :data:`RATE_MARGIN`) in bit/s
    summed over slots. ``rate_weight`` w_k[n] (N, K), when given, is the share of user k's slot-n
    rate that counts toward R_min (QuantumUav-v0: (1 - e_k[n]) (tau - QKD time[n]) / tau, the
    secure share): C6 becomes sum_n w_k[n] r_k[n] >= N R_min; the objective stays the data rate.
    None: every rate counts whole (w = 1, the paper's C6).
    """

    snr_per_watt: NDArray[np.float64]
    cap: NDArray[np.float64]
    budget: NDArray[np.float64]
    fixed_power: NDArray[np.float64]
    subcarrier_hz: float
    num_subcarriers: int
    rate_target: float
    rate_weight: NDArray[np.float64] | None = None

    @property
    def weight(self) -> NDArray[np.float64]:
        """w_k[n] (N, K): ``rate_weight``, or ones."""
        return np.ones(self.snr_per_watt.shape) if self.rate_weight is None else self.rate_weight

    def coef(self, lam: NDArray[np.float64]) -> NDArray[np.float64]:
        """The Lagrangian's coefficient of each rate, 1 + lambda_k w_k[n] (N, K) (1 + lambda_k when
        every rate counts whole: the same numbers)."""
        return 1.0 + lam * self.weight

    def rows(self, idx: NDArray[np.int64], g: NDArray[np.float64], budget: NDArray[np.float64]) -> "SlotProblem":
        """The problem restricted to slots ``idx`` (with their ``g`` and ``budget``)."""
        return dataclasses.replace(self, snr_per_watt=g, cap=self.cap[idx], budget=budget,
                                   fixed_power=self.fixed_power[idx],
                                   rate_weight=None if self.rate_weight is None else self.rate_weight[idx])

    @classmethod
    def from_trajectory(cls, scenario: Any, positions: ArrayLike, velocities: ArrayLike,
                        user_xy: ArrayLike, rate_weight: ArrayLike | None = None) -> "SlotProblem":
        c = model.SlotConstants.from_scenario(scenario)
        q = np.asarray(positions, dtype=np.float64)
        v = np.asarray(velocities, dtype=np.float64)
        g = c.gamma0 / squared_distance(q, user_xy, c.altitude_m)
        # C7 against every eavesdropper disc (extension: J >= 1): the cap of the closest one
        d_e2 = worst_case_disc_distance_sq(q[:, 0], q[:, 1], np.asarray(c.eve_discs, dtype=np.float64),
                                           c.altitude_m)
        cap = leakage_power_cap(c.gamma_tol, c.gamma0, d_e2)
        p_fly = flight_power(np.sqrt(np.sum(v * v, axis=-1)), c.rotor)
        return cls(snr_per_watt=g, cap=cap, budget=model.transmit_budget(p_fly, c),
                   fixed_power=c.circuit_power_w + p_fly, subcarrier_hz=c.subcarrier_hz,
                   num_subcarriers=c.num_subcarriers,
                   rate_target=q.shape[0] * scenario.r_min_bps * (1.0 + RATE_MARGIN),
                   rate_weight=None if rate_weight is None else np.asarray(rate_weight, dtype=np.float64))

    @property
    def shape(self) -> tuple[int, int]:
        return self.snr_per_watt.shape  # type: ignore[return-value]


@dataclass
class PowerPlan:
    """Output of :func:`subproblem1` for one trajectory.

    ``power_w`` and ``user`` (N, N_F) are the per-subcarrier decision (unused subcarriers carry
    power 0); ``energy_efficiency`` is the env's metric on this plan; ``relaxed_energy_efficiency``
    that of the time-sharing relaxation (an upper bound up to the solver tolerances);
    ``dinkelbach`` the eta sequence of the relaxed solve and ``resolve_dinkelbach`` that of the
    final re-solve; ``multipliers`` the final lambda_k. ``rmin_shortfall_bps`` (K,) is
    [R_min - R_k]^+ of each user's mission-average rate on the plan's trajectory (all 0 when C6
    holds; ``rate_feasible`` says so): where R_min cannot be met, the plan is still feasible in
    every other limit and says by how much each user misses it. ``solver`` counts the solver
    retries and fallbacks of the master LP (HiGHS); ``limit_repairs`` the slots
    :func:`plan_on_schedule` had to pull back into a limit (0 for sub-problem 1's own plans).
    """

    power_w: NDArray[np.float64]
    user: NDArray[np.int64]
    counts: NDArray[np.int64]
    power_per_subcarrier: NDArray[np.float64]   # (N, K): the common power of user k's subcarriers
    energy_efficiency: float
    relaxed_energy_efficiency: float
    mean_rate_bps: NDArray[np.float64]
    dinkelbach: list[float] = field(default_factory=list)
    resolve_dinkelbach: list[float] = field(default_factory=list)
    multipliers: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    master_rounds: int = 0
    rate_feasible: bool = True
    rmin_shortfall_bps: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    solver: SolverLog = field(default_factory=SolverLog)
    limit_repairs: int = 0


# -- Layer 1 --------------------------------------------------------------------------------------
def water_fill(g: NDArray[np.float64], cap: NDArray[np.float64], coef: NDArray[np.float64],
               price: NDArray[np.float64], w_hz: float) -> NDArray[np.float64]:
    """Per-subcarrier power p_k[n] = min([c_k[n] W / (ln2 price[n]) - 1/g_k[n]]^+, cap[n]) (eq. (21)),
    c = 1 + lam_k (w_k[n]) the rate's coefficient (:meth:`SlotProblem.coef`)."""
    with np.errstate(divide="ignore"):
        level = coef * w_hz / (_LN2 * price[:, None])
    return np.clip(level - 1.0 / g, 0.0, cap[:, None])


def marginal_benefit(p: NDArray[np.float64], g: NDArray[np.float64], coef: NDArray[np.float64],
                     price: NDArray[np.float64], w_hz: float) -> NDArray[np.float64]:
    """Per-subcarrier Lagrangian value c_k[n] W log2(1 + p g) - price p (eq. (23) at the optimum)."""
    return coef * w_hz * np.log2(1.0 + p * g) - price[:, None] * p


def _best_user(sp: SlotProblem, lam: NDArray[np.float64], price: NDArray[np.float64]
               ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    coef = sp.coef(lam)
    p = water_fill(sp.snr_per_watt, sp.cap, coef, price, sp.subcarrier_hz)
    m = marginal_benefit(p, sp.snr_per_watt, coef, price, sp.subcarrier_hz)
    k = np.argmax(m, axis=1)
    rows = np.arange(len(k))
    return k, p[rows, k], m[rows, k]


def solve_slots(sp: SlotProblem, lam: NDArray[np.float64], eta: float, iters: int = 60
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact per-slot optimum of the relaxed Lagrangian for given (lambda, eta).

    Returns x (N, K), the fraction of each slot's subcarriers per user, and p (N, K), their
    per-subcarrier power. The budget multiplier alpha[n] is found by bisection; where the best user
    changes at alpha[n] the slot mixes the two users so the budget is met exactly.
    """
    n, k = sp.shape
    nf = sp.num_subcarriers
    rows = np.arange(n)
    price0 = np.full(n, float(eta))
    u0, p0, _ = _best_user(sp, lam, price0)
    x = np.zeros((n, k))
    p = np.zeros((n, k))
    over = nf * p0 > sp.budget * (1.0 + 1e-12)
    x[rows, u0] = 1.0
    p[rows, u0] = p0
    if np.any(over):
        idx = np.flatnonzero(over)
        g = sp.snr_per_watt[idx]
        budget = sp.budget[idx]
        sub = sp.rows(idx, g, budget)
        # every user's power is within budget / N_F once price >= c W / (ln2 (budget/N_F + 1/g))
        hi = np.max(sub.coef(lam) * sp.subcarrier_hz / (_LN2 * (budget[:, None] / nf + 1.0 / g)), axis=1)
        hi = np.maximum(hi, eta) * (1.0 + 1e-9) + 1e-300
        lo = np.full(len(idx), float(eta))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            _, pm, _ = _best_user(sub, lam, mid)
            too_much = nf * pm > budget
            lo = np.where(too_much, mid, lo)
            hi = np.where(too_much, hi, mid)
        u_lo, p_lo, _ = _best_user(sub, lam, lo)
        u_hi, p_hi, _ = _best_user(sub, lam, hi)
        xs = np.zeros((len(idx), k))
        ps = np.zeros((len(idx), k))
        r = np.arange(len(idx))
        same = u_lo == u_hi
        # same user on both sides: power continuous in alpha, so it lands on the budget
        ps[r[same], u_hi[same]] = np.minimum(budget[same] / nf, sp.cap[idx][same])
        xs[r[same], u_hi[same]] = 1.0
        # different users: time-share so that N_F (theta p_lo + (1 - theta) p_hi) = budget
        mix = ~same
        if np.any(mix):
            denom = p_lo[mix] - p_hi[mix]
            theta = np.clip((budget[mix] / nf - p_hi[mix]) / np.where(denom > 0, denom, 1.0), 0.0, 1.0)
            xs[r[mix], u_lo[mix]] = theta
            xs[r[mix], u_hi[mix]] = 1.0 - theta
            ps[r[mix], u_lo[mix]] = p_lo[mix]
            ps[r[mix], u_hi[mix]] = p_hi[mix]
        x[idx] = xs
        p[idx] = ps
    return x, p


def relaxed_value(sp: SlotProblem, x: NDArray[np.float64], p: NDArray[np.float64]
                  ) -> tuple[NDArray[np.float64], float]:
    """(per-user rate summed over slots (K,) in bit/s, total power summed over slots in W)."""
    nf = sp.num_subcarriers
    rate = nf * sp.subcarrier_hz * x * np.log2(1.0 + p * sp.snr_per_watt)
    power = float(np.sum(nf * np.sum(x * p, axis=1) + sp.fixed_power))
    return rate.sum(axis=0), power


def relaxed_counted(sp: SlotProblem, x: NDArray[np.float64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-user rate that counts toward R_min, sum_n w_k[n] r_k[n] (K,) in bit/s."""
    rate = sp.num_subcarriers * sp.subcarrier_hz * x * np.log2(1.0 + p * sp.snr_per_watt)
    return rate.sum(axis=0) if sp.rate_weight is None else (rate * sp.rate_weight).sum(axis=0)


# -- Layer 2 on the relaxation: cutting-plane multipliers (Dantzig-Wolfe master) ---------------
@dataclass
class _Columns:
    """Per-slot feasible points found by Layer 1 (columns of the Dantzig-Wolfe master)."""

    slot: list[NDArray[np.int64]] = field(default_factory=list)
    x: list[NDArray[np.float64]] = field(default_factory=list)
    p: list[NDArray[np.float64]] = field(default_factory=list)
    rate: list[NDArray[np.float64]] = field(default_factory=list)
    counted: list[NDArray[np.float64]] = field(default_factory=list)   # w * rate (C6's rows)
    power: list[NDArray[np.float64]] = field(default_factory=list)

    def add(self, sp: SlotProblem, slots: NDArray[np.int64], x: NDArray[np.float64], p: NDArray[np.float64]) -> None:
        nf = sp.num_subcarriers
        g = sp.snr_per_watt[slots]
        self.slot.append(slots)
        self.x.append(x)
        self.p.append(p)
        rate = nf * sp.subcarrier_hz * x * np.log2(1.0 + p * g)
        self.rate.append(rate)
        self.counted.append(rate if sp.rate_weight is None else rate * sp.rate_weight[slots])
        self.power.append(nf * np.sum(x * p, axis=1))

    def stacked(self) -> tuple[NDArray[Any], ...]:
        return (np.concatenate(self.slot), np.concatenate(self.x), np.concatenate(self.p),
                np.concatenate(self.rate), np.concatenate(self.power))

    def counted_rates(self) -> NDArray[np.float64]:
        return np.concatenate(self.counted)


def _initial_columns(sp: SlotProblem, eta: float) -> _Columns:
    """The lambda = 0 Layer-1 point and, per user, the slot given wholly to that user at full power."""
    n, k = sp.shape
    cols = _Columns()
    slots = np.arange(n)
    x, p = solve_slots(sp, np.zeros(k), eta)
    cols.add(sp, slots, x, p)
    for kk in range(k):
        xk = np.zeros((n, k))
        pk = np.zeros((n, k))
        xk[:, kk] = 1.0
        pk[:, kk] = np.minimum(sp.cap, sp.budget / sp.num_subcarriers)
        cols.add(sp, slots, xk, pk)
    return cols


def _master_lp(c_obj: NDArray[np.float64], a_ub: NDArray[np.float64], b_ub: NDArray[np.float64],
               a_eq: NDArray[np.float64], log: SolverLog) -> Any:
    """The master LP by HiGHS; after a failure, retried with HiGHS's other methods (counted in
    ``log``). None when every method fails."""
    from scipy.optimize import linprog

    for attempt, method in enumerate(_LP_METHODS):
        log.retries += attempt > 0
        res = linprog(c_obj, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.ones(a_eq.shape[0]), bounds=(0, None),
                      method=method)
        if res.status == 0:
            return res
    return None


def _inner_relaxed(sp: SlotProblem, eta: float, cols: _Columns, max_rounds: int, rtol: float,
                   log: SolverLog | None = None
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]:
    """max U - eta U_TP over the relaxation, by dual decomposition. Returns (x, p, lambda, rounds).

    Layer 2 updates the R_min multipliers lambda by the cutting-plane (Kelley) method: the LP over
    convex combinations of the per-slot points Layer 1 has produced (the Dantzig-Wolfe master)
    gives lambda as its rate-constraint duals; Layer 1 at that lambda adds each slot's best point;
    stop when no slot's point improves on the master (the duality gap is then below ``rtol``).
    The master's mix of a slot's points, taken in the perspective variables (x, x p), is a feasible
    relaxed point whose rates are at least the mixed rates (concavity). With lambda = 0 feasible
    the method stops at once. The rate constraints have slacks at a large price, so the master is
    always feasible: where R_min is out of reach, the mix misses it by the least (weighted) total.
    Should the LP solver fail on every retry (recorded in ``log``), the last master's mix is kept
    (or, in the first round, the lambda = 0 point).
    """
    log = SolverLog() if log is None else log
    n, k = sp.shape
    target = sp.rate_target * (1.0 + ROUNDING_MARGIN)  # margin for the rounding to whole subcarriers
    lam = np.zeros(k)
    x0, p0 = solve_slots(sp, lam, eta)
    rates0 = relaxed_counted(sp, x0, p0)
    if target <= 0 or np.all(rates0 >= target):
        return x0, p0, lam, 0
    scale = max(float(np.max(cols.stacked()[3].sum(axis=1))), 1.0)   # bit/s of the best column
    big = 1e6
    rounds = 0
    last: tuple[NDArray[Any], ...] | None = None     # the last master's columns and mix
    for rounds in range(1, max_rounds + 1):
        slot, xs, ps, rate, power = cols.stacked()
        counted = cols.counted_rates()
        m = len(slot)
        value = (rate.sum(axis=1) - eta * power) / scale
        # variables: theta (m) then rate slacks (k); minimise -value + big * slack
        c_obj = np.concatenate([-value, np.full(k, big)])
        a_ub = np.zeros((k, m + k))
        a_ub[:, :m] = -counted.T / scale
        a_ub[:, m:] = -np.eye(k)
        b_ub = np.full(k, -target / scale)
        a_eq = np.zeros((n, m + k))
        a_eq[slot, np.arange(m)] = 1.0
        res = _master_lp(c_obj, a_ub, b_ub, a_eq, log)
        if res is None:
            log.fallbacks += 1
            if last is None:
                return x0, p0, np.zeros(k), rounds
            break
        last = (slot, xs, ps, res.x[:m])
        lam = np.maximum(-res.ineqlin.marginals, 0.0)
        sigma = -res.eqlin.marginals
        xn, pn = solve_slots(sp, lam, eta)
        ratesn = sp.num_subcarriers * sp.subcarrier_hz * xn * np.log2(1.0 + pn * sp.snr_per_watt)
        powern = sp.num_subcarriers * np.sum(xn * pn, axis=1)
        reduced = ((ratesn * sp.coef(lam)).sum(axis=1) - eta * powern) / scale - sigma
        gap = float(np.sum(np.maximum(reduced, 0.0)))
        if gap <= rtol * max(abs(float(-res.fun)), 1e-12):
            break
        add = np.flatnonzero(reduced > 1e-12)
        cols.add(sp, add, xn[add], pn[add])
    # primal recovery: mix each slot's columns in the perspective variables
    assert last is not None
    slot, xs, ps, theta = last
    xm = np.zeros((n, k))
    ym = np.zeros((n, k))
    np.add.at(xm, slot, theta[:, None] * xs)
    np.add.at(ym, slot, theta[:, None] * xs * ps)
    pm = np.divide(ym, xm, out=np.zeros_like(xm), where=xm > 1e-15)
    return xm, pm, lam, rounds


def least_shortfall(sp: SlotProblem, r_min_bps: float, max_rounds: int = 400, rtol: float = 1e-9,
                   log: SolverLog | None = None) -> NDArray[np.float64]:
    """Each user's R_min shortfall (K,), mission-average bit/s, at the point of the time-sharing
    relaxation on this trajectory that misses R_min by the least total (counted rates, so with
    ``sp.rate_weight`` where given): the cutting-plane master of :func:`_inner_relaxed` at
    eta = 0 with the target N R_min, whose priced slacks make the least total shortfall its first
    aim. The relaxation contains every whole-subcarrier plan, so a positive total certifies that
    no plan on this trajectory meets R_min (with these weights)."""
    n, k = sp.shape
    # (_inner_relaxed aims at its target (1 + ROUNDING_MARGIN) for the later rounding: undo that here)
    exact = dataclasses.replace(sp, rate_target=n * r_min_bps / (1.0 + ROUNDING_MARGIN))
    x, p, _, _ = _inner_relaxed(exact, 0.0, _initial_columns(exact, 0.0), max_rounds, rtol, log)
    return np.maximum(n * r_min_bps - relaxed_counted(exact, x, p), 0.0) / n


# -- final re-solve on a binary schedule ----------------------------------------------------------
def round_schedule(x: NDArray[np.float64], num_subcarriers: int) -> NDArray[np.int64]:
    """Whole subcarrier counts per (slot, user) from fractions (largest remainder, per slot)."""
    want = x * num_subcarriers
    counts = np.floor(want + 1e-9).astype(np.int64)
    total = np.minimum(np.round(want.sum(axis=1)).astype(np.int64), num_subcarriers)
    rem = want - counts
    order = np.argsort(-rem, axis=1)
    for n in range(x.shape[0]):
        extra = int(total[n] - counts[n].sum())
        for j in range(max(extra, 0)):
            counts[n, order[n, j]] += 1
    return counts


def _fixed_schedule_power(sp: SlotProblem, counts: NDArray[np.int64], lam: NDArray[np.float64], eta: float,
                          iters: int = 60) -> NDArray[np.float64]:
    """Per-subcarrier powers (N, K) on a fixed schedule: water-filling with a per-slot budget."""
    active = counts > 0
    price = np.full(sp.shape[0], float(eta))
    coef = sp.coef(lam)
    p = np.where(active, water_fill(sp.snr_per_watt, sp.cap, coef, price, sp.subcarrier_hz), 0.0)
    use = np.sum(counts * p, axis=1)
    over = use > sp.budget * (1.0 + 1e-12)
    if np.any(over):
        idx = np.flatnonzero(over)
        g, cap, cnt, budget = sp.snr_per_watt[idx], sp.cap[idx], counts[idx], sp.budget[idx]
        # at this price every active subcarrier's power is at most budget / (active subcarriers),
        # so the slot's total is within the budget
        share = budget / np.sum(cnt, axis=1)
        hi = np.max(np.where(cnt > 0, coef[idx] * sp.subcarrier_hz
                             / (_LN2 * (share[:, None] + 1.0 / g)), 0.0), axis=1)
        hi = np.maximum(hi, eta) * (1.0 + 1e-9) + 1e-300
        lo = np.full(len(idx), float(eta))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            pm = np.where(cnt > 0, water_fill(g, cap, coef[idx], mid, sp.subcarrier_hz), 0.0)
            too_much = np.sum(cnt * pm, axis=1) > budget
            lo = np.where(too_much, mid, lo)
            hi = np.where(too_much, hi, mid)
        p[idx] = np.where(cnt > 0, water_fill(g, cap, coef[idx], hi, sp.subcarrier_hz), 0.0)
    return p


def _fixed_rates(sp: SlotProblem, counts: NDArray[np.int64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.sum(counts * sp.subcarrier_hz * np.log2(1.0 + p * sp.snr_per_watt), axis=0)


def _fixed_counted(sp: SlotProblem, counts: NDArray[np.int64], p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-user rate that counts toward R_min on a fixed schedule (K,) (:func:`relaxed_counted`)."""
    if sp.rate_weight is None:
        return _fixed_rates(sp, counts, p)
    return np.sum(counts * sp.subcarrier_hz * np.log2(1.0 + p * sp.snr_per_watt) * sp.rate_weight, axis=0)


def _fixed_power_total(sp: SlotProblem, counts: NDArray[np.int64], p: NDArray[np.float64]) -> float:
    return float(np.sum(np.sum(counts * p, axis=1) + sp.fixed_power))


def _fixed_inner(sp: SlotProblem, counts: NDArray[np.int64], eta: float, lam: NDArray[np.float64],
                 sweeps: int = 50, iters: int = 60) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss-Seidel bisection on lambda so that every rate meets the target (or lambda_k = 0)."""
    target = sp.rate_target
    lam = lam.copy()
    p = _fixed_schedule_power(sp, counts, lam, eta)
    if target <= 0:
        return p, np.zeros_like(lam)
    for _ in range(sweeps):
        changed = False
        for k in range(len(lam)):
            rates = _fixed_counted(sp, counts, p)
            short = rates[k] < target
            if not short and (lam[k] == 0.0 or rates[k] <= target * (1.0 + 1e-9)):
                continue

            def rate_k(value: float) -> float:
                trial = lam.copy()
                trial[k] = value
                return float(_fixed_counted(sp, counts, _fixed_schedule_power(sp, counts, trial, eta))[k])

            if short:
                if lam[k] >= LAMBDA_MAX:
                    continue
                lo, hi = lam[k], min(max(2.0 * lam[k], 1.0), LAMBDA_MAX)
                while rate_k(hi) < target and hi < LAMBDA_MAX:
                    lo, hi = hi, min(hi * 4.0, LAMBDA_MAX)
                if rate_k(hi) < target:
                    lam[k] = hi
                    p = _fixed_schedule_power(sp, counts, lam, eta)
                    continue
            else:
                lo, hi = 0.0, lam[k]
                if rate_k(0.0) >= target:
                    hi = 0.0
            for _ in range(iters if hi > 0 else 0):
                mid = 0.5 * (lo + hi)
                if rate_k(mid) < target:
                    lo = mid
                else:
                    hi = mid
            if abs(hi - lam[k]) > 1e-12 * max(1.0, hi):
                changed = True
            lam[k] = hi
            p = _fixed_schedule_power(sp, counts, lam, eta)
        if not changed:
            break
    return p, lam


def _resolve_fixed(sp: SlotProblem, counts: NDArray[np.int64], lam: NDArray[np.float64], tol: float,
                   max_dinkelbach: int) -> tuple[NDArray[np.float64], NDArray[np.float64], list[float]]:
    """Dinkelbach over the powers of a fixed binary schedule. Returns (p (N, K), lambda, eta history)."""
    eta, history = 0.0, []
    pk = np.zeros(sp.shape)
    for _ in range(max_dinkelbach):
        pk_t, lam = _fixed_inner(sp, counts, eta, lam)
        u = float(_fixed_rates(sp, counts, pk_t).sum())
        power = _fixed_power_total(sp, counts, pk_t)
        value = u - eta * power
        if history and value < 0.0:
            break
        pk = pk_t
        new_eta = u / power
        history.append(new_eta)
        if value <= tol * power * max(new_eta, 1e-300) or new_eta <= eta:
            break
        eta = new_eta
    return pk, lam, history


def _repair_step(sp: SlotProblem, counts: NDArray[np.int64], pk: NDArray[np.float64],
                 rates: NDArray[np.float64]) -> bool:
    """Give one subcarrier to the user furthest below R_min (in place). False if none is short
    or no slot can spare one.

    The donor is an unused subcarrier or one of a user with at least a subcarrier's worth of
    surplus; among those, the slot where the short user would gain the most at its largest
    allowed power is chosen.
    """
    target = sp.rate_target
    if target <= 0:
        return False
    short = rates < target * (1.0 - 1e-12)
    if not np.any(short):
        return False
    k = int(np.argmax(np.where(short, target - rates, -np.inf)))
    nf = sp.num_subcarriers
    p_full = np.minimum(sp.cap, sp.budget / np.maximum(counts.sum(axis=1), 1))
    w = sp.weight
    gain = sp.subcarrier_hz * np.log2(1.0 + p_full * sp.snr_per_watt[:, k]) * w[:, k]
    per_sub = sp.subcarrier_hz * np.log2(1.0 + pk * sp.snr_per_watt) * w        # (N, K), counted
    spare = (rates - target)[None, :] > per_sub
    spare[:, k] = False
    donor_ok = (counts > 0) & spare
    free = counts.sum(axis=1) < nf
    candidate = (free | donor_ok.any(axis=1)) & (gain > 0)
    if not np.any(candidate):
        return False
    n = int(np.argmax(np.where(candidate, gain, -np.inf)))
    if not free[n]:
        j = int(np.argmin(np.where(donor_ok[n], per_sub[n], np.inf)))
        counts[n, j] -= 1
    counts[n, k] += 1
    return True


# -- sub-problem 1 --------------------------------------------------------------------------------
def subproblem1(scenario: Any, positions: ArrayLike, velocities: ArrayLike, user_xy: ArrayLike | None = None,
                *, tol: float = 1e-7, max_dinkelbach: int = 50, max_rounds: int = 200,
                dual_rtol: float = 1e-7, rate_weight: ArrayLike | None = None) -> PowerPlan:
    """Power and subcarrier schedule maximising energy efficiency on a fixed trajectory.

    ``positions`` q[1..N] and ``velocities`` v[1..N] (N, 2) as in
    :mod:`secure_env.core.uav_ofdma`; ``user_xy`` (K, 2) defaults to the scenario's users.
    ``rate_weight`` (N, K): the share of each rate that counts toward R_min
    (:class:`SlotProblem`); the plan's ``rmin_shortfall_bps`` is then measured on those shares.
    """
    users = np.asarray(scenario.user_xy if user_xy is None else user_xy, dtype=np.float64)
    sp = SlotProblem.from_trajectory(scenario, positions, velocities, users, rate_weight)
    n, k = sp.shape
    nf = sp.num_subcarriers
    log = SolverLog()

    # Dinkelbach on the relaxation
    eta, lam, history, steps = 0.0, np.zeros(k), [], 0
    x, _ = solve_slots(sp, lam, eta)
    cols = _initial_columns(sp, eta)
    for _ in range(max_dinkelbach):
        x_t, p_t, lam, s_t = _inner_relaxed(sp, eta, cols, max_rounds, dual_rtol, log)
        steps += s_t
        rates, power = relaxed_value(sp, x_t, p_t)
        value = float(rates.sum()) - eta * power
        if history and value < 0.0:   # an inexact inner solve did not improve: keep the last point
            break
        x = x_t
        new_eta = float(rates.sum()) / power
        history.append(new_eta)
        if value <= tol * power * max(new_eta, 1e-300) or new_eta <= eta:
            eta = new_eta
            break
        eta = new_eta
    relaxed_ee = history[-1] if history else 0.0

    # final re-solve on whole subcarriers, moving subcarriers to a user the rounding left short
    # (where R_min is out of reach, the short users' multipliers end at LAMBDA_MAX: their powers
    # are as large as the leakage cap and the slot budgets allow on the best schedule found)
    counts = round_schedule(x, nf)
    pk, lam2, history2 = _resolve_fixed(sp, counts, lam, tol, max_dinkelbach)
    for _ in range(n * nf):
        rates = _fixed_counted(sp, counts, pk)
        moved = _repair_step(sp, counts, pk, rates)
        if not moved:
            break
        pk, lam2, history2 = _resolve_fixed(sp, counts, lam2, tol, max_dinkelbach)

    return plan_on_schedule(scenario, positions, velocities, users, counts, pk, sp=sp,
                            relaxed_energy_efficiency=relaxed_ee, dinkelbach=history,
                            resolve_dinkelbach=history2, multipliers=lam2, master_rounds=steps, solver=log)


#: relative excess over the leakage cap or the slot budget that :func:`plan_on_schedule` counts as a
#: repair (below it: the last digits of a solver's answer)
REPAIR_RTOL = 1e-6


def plan_on_schedule(scenario: Any, positions: ArrayLike, velocities: ArrayLike, user_xy: ArrayLike,
                     counts: NDArray[np.int64], power_per_subcarrier: NDArray[np.float64], *,
                     sp: SlotProblem | None = None, **record: Any) -> PowerPlan:
    """The :class:`PowerPlan` of powers ``power_per_subcarrier`` (N, K) on the whole-subcarrier
    schedule ``counts`` (N, K), flown on ``positions``/``velocities``, scored by the env's metric.

    Every limit holds by construction: at most N_F subcarriers per slot (else ``ValueError``),
    powers in [0, leakage cap] (C7) and each slot's total within min(P_peak, P_max - P_C - P_fly)
    (C4, C5), scaled down where needed; ``limit_repairs`` in the record counts the slots this
    changed by more than :data:`REPAIR_RTOL` (0 for the solvers' own plans). The R_min shortfall
    of each user is measured (on the shares ``sp.rate_weight`` counts, where given), not enforced. ``record`` holds the other PowerPlan fields.
    """
    users = np.asarray(user_xy, dtype=np.float64)
    sp = SlotProblem.from_trajectory(scenario, positions, velocities, users) if sp is None else sp
    nf = sp.num_subcarriers
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != sp.shape or np.any(counts < 0) or np.any(counts.sum(axis=1) > nf):
        raise ValueError(f"counts must be (N, K) = {sp.shape} non-negative with at most {nf} per slot")
    raw = np.where(counts > 0, np.maximum(np.asarray(power_per_subcarrier, dtype=np.float64), 0.0), 0.0)
    pk = np.minimum(raw, sp.cap[:, None])
    use = np.sum(counts * pk, axis=1)
    over = use > sp.budget
    # (1 - 1e-12): the scaled sum may not round above the budget
    scale = np.where(over, sp.budget / np.where(over, use, 1.0) * (1.0 - 1e-12), 1.0)
    pk = pk * scale[:, None]
    repaired = (np.any(raw > sp.cap[:, None] * (1.0 + REPAIR_RTOL), axis=1)
                | (np.sum(counts * raw, axis=1) > sp.budget * (1.0 + REPAIR_RTOL)))
    power_w, user = expand_schedule(counts, pk, nf)
    c = model.SlotConstants.from_scenario(scenario)
    out = model.trajectory_outcome(positions, velocities, power_w, user, users, c)
    counted = out["mean_rate_bps"] if sp.rate_weight is None else \
        (out["bits_per_user"] * sp.rate_weight).sum(axis=0) / (len(sp.budget) * c.slot_s)
    shortfall = np.maximum(scenario.r_min_bps - counted, 0.0)
    record.setdefault("relaxed_energy_efficiency", math.nan)
    return PowerPlan(power_w=power_w, user=user, counts=counts, power_per_subcarrier=pk,
                     energy_efficiency=out["energy_efficiency_bits_per_joule"],
                     mean_rate_bps=out["mean_rate_bps"], rate_feasible=not bool(np.any(shortfall > 0)),
                     rmin_shortfall_bps=shortfall, limit_repairs=int(np.sum(repaired)), **record)


def expand_schedule(counts: NDArray[np.int64], power_per_subcarrier: NDArray[np.float64], num_subcarriers: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(N, K) counts and powers -> per-subcarrier (N, N_F) power and user (user 0 at power 0 when unused)."""
    n, k = counts.shape
    power = np.zeros((n, num_subcarriers))
    user = np.zeros((n, num_subcarriers), dtype=np.int64)
    for slot in range(n):
        start = 0
        for kk in range(k):
            c = int(counts[slot, kk])
            user[slot, start:start + c] = kk
            power[slot, start:start + c] = power_per_subcarrier[slot, kk]
            start += c
    return power, user
