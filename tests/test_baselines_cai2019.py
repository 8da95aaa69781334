"""Sub-problem 1 of Cai et al. 2019 (power and scheduling on a fixed trajectory) and the straight-line
baseline.

The reference is an independent convex solve of the same time-sharing relaxation with cvxpy +
Clarabel (tests/cai2019_reference.py, Charnes-Cooper transform of the fractional program), which
shares no code with the dual decomposition under test.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401
from baselines import BASELINES
from baselines.cai2019 import power
from baselines.cai2019.policies import StraightLinePolicy
from secure_env.core import uav_ofdma as model
from secure_env.scenarios import make_scenario

from cai2019_reference import relaxed_ee_cvxpy

ENV_ID = "secure_env/UavSecureOfdma-v0"


def reference(s, pos, vel, users):
    sp = power.SlotProblem.from_trajectory(s, pos, vel, users)
    return relaxed_ee_cvxpy(sp.snr_per_watt, sp.cap, sp.budget, sp.fixed_power - s.circuit_power_w,
                            s.circuit_power_w, s.subcarrier_hz, s.num_subcarriers, s.r_min_bps)


def check_constraints(s, pos, vel, users, plan):
    """C2-C7 on the returned per-subcarrier plan, recomputed from the model functions."""
    c = model.SlotConstants.from_scenario(s)
    p, u = plan.power_w, plan.user
    assert p.shape == (s.num_slots, s.num_subcarriers) and u.shape == p.shape
    assert np.all(p >= 0) and np.all((u >= 0) & (u < s.num_users))          # C1-C3 (one user each)
    speed = np.linalg.norm(vel, axis=1)
    budget = model.transmit_budget(model.flight_power(speed, c.rotor), c)
    assert np.all(p.sum(axis=1) <= budget * (1 + 1e-9))                      # C4 and C5
    out = model.trajectory_outcome(pos, vel, p, u, users, c)
    assert np.all(out["leakage_snr_max"] <= s.gamma_tol * (1 + 1e-9))          # C7
    assert np.all(out["mean_rate_bps"] >= s.r_min_bps * (1 - 1e-9))            # C6
    assert plan.rate_feasible
    assert plan.energy_efficiency == pytest.approx(out["energy_efficiency_bits_per_joule"], rel=1e-12)
    return out


def wiggly_case(seed, nf=128):
    """A random feasible trajectory with K random users and an R_min that binds for someone."""
    r = np.random.default_rng(seed)
    n, k = int(r.integers(8, 25)), int(r.integers(2, 5))
    vel = r.uniform(-1, 1, (n, 2)) * 15 + np.array([15.0, 0.0])
    pos = np.cumsum(vel * 2.0, axis=0)
    users = r.uniform([0, -200], [30 * n, 200], (k, 2))
    base = make_scenario("cai2019", num_users=k, num_slots=n, num_subcarriers=nf, end_xy=tuple(pos[-1]),
                         eve_xy=(15.0 * n, 0.0), user_xy=users.tolist(), r_min_bps=0.0,
                         p_max_dbm=float(r.uniform(60.3, 61.0)), peak_power_w=float(r.uniform(1, 20)),
                         eve_radius_m=float(r.uniform(0, 100)))
    sp = power.SlotProblem.from_trajectory(base, pos, vel, users)
    full = np.minimum(sp.cap, sp.budget / nf)[:, None]
    best_alone = (nf * sp.subcarrier_hz * np.log2(1 + full * sp.snr_per_watt)).mean(axis=0)
    # every user can get best_alone / K by equal time sharing, so this R_min is feasible
    s = make_scenario(base, r_min_bps=float(r.uniform(0.5, 0.95) * best_alone.min() / k))
    return s, pos, vel, users


# --------------------------------------------------------------------------------------------
# Sub-problem 1 against the convex reference
# --------------------------------------------------------------------------------------------
def test_defaults_straight_line_matches_reference_and_rmin_does_not_bind():
    s = make_scenario("cai2019")
    pos, vel = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    users = np.asarray(s.user_xy)
    plan = power.subproblem1(s, pos, vel)
    out = check_constraints(s, pos, vel, users, plan)
    ref = reference(s, pos, vel, users)
    assert plan.energy_efficiency == pytest.approx(ref["ee"], rel=1e-6)
    assert plan.master_rounds == 0                      # lambda = 0 already meets R_min (spec §16)
    assert np.all(out["mean_rate_bps"] > 2 * s.r_min_bps)
    # spec §16: each slot transmits at min(P_peak, whole-band leakage cap), to one user
    sp = power.SlotProblem.from_trajectory(s, pos, vel, users)
    np.testing.assert_allclose(plan.power_w.sum(axis=1), np.minimum(10.0, 128 * sp.cap), rtol=1e-9)
    assert np.all((plan.counts == 128).sum(axis=1) == 1)


@pytest.mark.parametrize("r_min", [1e5, 1.5e5])
def test_binding_rmin_on_the_straight_line(r_min):
    s = make_scenario("cai2019", r_min_bps=r_min)
    pos, vel = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    users = np.asarray(s.user_xy)
    free = power.subproblem1(make_scenario("cai2019"), pos, vel)
    assert free.mean_rate_bps[1] < r_min                 # without the constraint user 2 gets less
    plan = power.subproblem1(s, pos, vel)
    out = check_constraints(s, pos, vel, users, plan)
    assert out["mean_rate_bps"][1] == pytest.approx(r_min, rel=2e-3)   # binds (up to the rounding margin)
    ref = reference(s, pos, vel, users)
    assert plan.energy_efficiency <= ref["ee"] * (1 + 1e-6)
    assert plan.energy_efficiency >= 0.99 * ref["ee"]
    assert plan.relaxed_energy_efficiency == pytest.approx(ref["ee"], rel=1e-3)
    assert plan.energy_efficiency < free.energy_efficiency


def test_binding_total_power_limit():
    # P_max leaves 1.4 W for transmission at 10 m/s: the budget, not P_peak or the cap, binds
    p_max_w = 1.0 + float(model.flight_power(10.0)) + 1.4
    for r_min in (0.0, 4e4):
        s = make_scenario("cai2019", p_max_dbm=10 * math.log10(p_max_w * 1e3), r_min_bps=r_min)
        pos, vel = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
        users = np.asarray(s.user_xy)
        plan = power.subproblem1(s, pos, vel)
        check_constraints(s, pos, vel, users, plan)
        sp = power.SlotProblem.from_trajectory(s, pos, vel, users)
        binding = sp.budget < np.minimum(10.0, 128 * sp.cap)
        assert binding.sum() > 20
        np.testing.assert_allclose(plan.power_w.sum(axis=1)[binding], sp.budget[binding], rtol=1e-6)
        ref = reference(s, pos, vel, users)
        assert 0.99 * ref["ee"] <= plan.energy_efficiency <= ref["ee"] * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_random_trajectories_with_binding_rmin_within_one_percent(seed):
    s, pos, vel, users = wiggly_case(seed, nf=int([64, 128][seed % 2]))
    plan = power.subproblem1(s, pos, vel, users)
    check_constraints(s, pos, vel, users, plan)
    ref = reference(s, pos, vel, users)
    assert plan.energy_efficiency <= ref["ee"] * (1 + 1e-6)
    assert plan.energy_efficiency >= 0.99 * ref["ee"]
    assert plan.relaxed_energy_efficiency == pytest.approx(ref["ee"], rel=1e-3)
    assert np.all(np.diff(plan.dinkelbach) >= 0) and np.all(np.diff(plan.resolve_dinkelbach) >= 0)


def test_dinkelbach_values_are_non_decreasing_from_zero_when_power_matters():
    # the light Zeng rotor (P_fly ~ 100 W), a lax leakage limit and a 100 W peak: transmit power
    # is a large part of the energy, so the Dinkelbach iterations move (eta_0 = 0 spends every
    # watt allowed, later iterations back off)
    s, pos, vel, users = wiggly_case(11)
    plan = power.subproblem1(s, pos, vel, users)
    assert len(plan.dinkelbach) >= 2
    assert np.all(np.diff(plan.dinkelbach) >= -1e-12 * plan.dinkelbach[-1])
    s2 = make_scenario(s, rotor="zeng2019", peak_power_w=100.0, eve_radius_m=0.0, gamma_tol=1e3,
                       r_min_bps=0.0)
    plan2 = power.subproblem1(s2, pos, vel, users)
    assert len(plan2.dinkelbach) >= 3
    assert np.all(np.diff(plan2.dinkelbach) > 0)
    ref = reference(s2, pos, vel, users)
    assert plan2.energy_efficiency == pytest.approx(ref["ee"], rel=1e-5)
    assert plan2.power_w.sum(axis=1).max() < 0.9 * 100.0      # the optimum is interior


def test_solve_slots_mixes_two_users_exactly_at_the_budget():
    # one slot, two users with gains that make the best user switch exactly where the budget binds
    sp = power.SlotProblem(snr_per_watt=np.array([[200.0, 60.0]]), cap=np.array([1.0]),
                             budget=np.array([1.0]), fixed_power=np.array([100.0]), subcarrier_hz=1e4,
                             num_subcarriers=4, rate_target=0.0)
    for lam in ([0.0, 0.0], [0.0, 2.0], [0.0, 5.0]):
        x, p = power.solve_slots(sp, np.array(lam), 50.0)
        assert x.sum() == pytest.approx(1.0)
        assert 4 * np.sum(x * p) <= 1.0 + 1e-9
        # brute force over (share of user 0, per-subcarrier powers) of the per-slot Lagrangian
        best = -np.inf
        grid = np.linspace(0, 1, 201)
        for th in grid:
            for p0 in np.linspace(0, 1, 101):
                rest = 1.0 / 4 - th * p0
                if rest < -1e-12:
                    continue
                p1 = min(rest / (1 - th), 1.0) if th < 1 else 0.0
                val = 4 * (th * (1 + lam[0]) * 1e4 * math.log2(1 + p0 * 200) - 50 * th * p0
                           + (1 - th) * (1 + lam[1]) * 1e4 * math.log2(1 + p1 * 60) - 50 * (1 - th) * p1)
                best = max(best, val)
        got = 4 * np.sum((1 + np.array(lam)) * 1e4 * x * np.log2(1 + p * sp.snr_per_watt) - 50 * x * p)
        assert got >= best - 1e-3 * abs(best)


# --------------------------------------------------------------------------------------------
# The straight-line baseline through the env
# --------------------------------------------------------------------------------------------
def test_straight_line_is_registered():
    assert BASELINES[ENV_ID]["straight_line"] is StraightLinePolicy


@pytest.mark.parametrize("kw", [dict(), dict(eve_radius_m=150.0, peak_power_w=1.0),
                                dict(random_users=True, r_min_bps=5e4)])
def test_straight_line_played_through_env_gives_the_planned_energy_efficiency(kw):
    env = gym.make(ENV_ID, **kw)
    policy = StraightLinePolicy(env)
    obs, _ = env.reset(seed=4)
    ret = 0.0
    while True:
        action, _ = policy.predict(obs)
        obs, r, term, trunc, info = env.step(action)
        ret += r
        assert not info["leakage_violation"] and not info["power_projected"]
        if term or trunc:
            break
    m = info["episode_metrics"]
    assert m["energy_efficiency_bits_per_joule"] == pytest.approx(policy.plan.energy_efficiency, rel=1e-3)
    assert m["min_rate_shortfall_bps"] == 0.0
    assert m["leakage_violations"] == 0.0
    assert m["final_position_error_m"] < 1e-3
    # no penalty was paid beyond float32 rounding of the destination: the return is EE in kbit/J
    assert ret == pytest.approx(m["energy_efficiency_bits_per_joule"] / 1000, rel=1e-5)


def test_straight_line_replans_for_each_episode_geometry():
    env = gym.make(ENV_ID, random_users=True)
    policy = StraightLinePolicy(env)
    plans = []
    for seed in (1, 2):
        obs, _ = env.reset(seed=seed)
        policy.predict(obs)
        plans.append(policy.plan.energy_efficiency)
    assert plans[0] != plans[1]


def test_straight_line_rejects_other_envs():
    with pytest.raises(ValueError, match="UavSecureOfdma"):
        StraightLinePolicy(gym.make("secure_env/QkdNoma-v0"))
