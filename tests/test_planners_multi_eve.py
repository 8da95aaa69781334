"""Cai et al. 2019 planners against J >= 1 eavesdropper discs (issue 20, extension).

Sub-problem 1 caps each subcarrier's power at the tightest disc's cap; sub-problem 2 and the joint
refinement's step carry one S-procedure block per disc that may bind. These tests check that a
second disc that can never bind changes nothing, that plans against two nearby discs never leak
(by dense sampling of both discs, independently of the planners' closed forms), and that the
compiled convex problems depend on the number of discs, not on where they are.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from baselines.cai2019 import power
from baselines.cai2019 import trajectory as tr
from secure_env.core import uav_ofdma as model
from secure_env.core.secrecy import worst_case_disc_distance_sq
from secure_env.scenarios import make_scenario

#: a small, fast mission (10 slots of 2 s, 300 m, 16 subcarriers, 3 users along the way)
QUICK = dict(num_slots=10, end_xy=(300.0, 0.0), num_subcarriers=16,
             user_xy=((50.0, 100.0), (150.0, -100.0), (250.0, 100.0)))
NEAR = (150.0, 40.0, 30.0)
FAR = (1e6, 1e6, 10.0)


def _plans(**kw):
    """(scenario, users, Algorithm 3's plan, the joint refinement's) of a quick scenario."""
    s = make_scenario("cai2019", **{**QUICK, **kw})
    users = np.asarray(s.user_xy, dtype=np.float64)
    a3 = tr.algorithm3(s, users)
    return s, users, a3, tr.joint_refinement(s, a3, users)


def _points_in(disc, rng, count=2000, boundary=720):
    """``count`` points drawn uniformly in the disc (x, y, r) and ``boundary`` on its circle."""
    x, y, r = disc
    rad = r * np.sqrt(rng.random(count))
    ang = 2.0 * math.pi * rng.random(count)
    edge = np.linspace(0.0, 2.0 * math.pi, boundary, endpoint=False)
    rad, ang = np.concatenate([rad, np.full(boundary, r)]), np.concatenate([ang, edge])
    return np.stack([x + rad * np.cos(ang), y + rad * np.sin(ang)], axis=-1)


def _max_leakage_ratio(s, plan_result, discs, rng):
    """max over slots, discs and sampled eavesdropper positions e of SNR_e / gamma_tol, with
    SNR_e = p_max[n] gamma0 / (H^2 + ||q[n] - e||^2) for the slot's largest per-subcarrier power."""
    q = plan_result.positions
    p_max = np.max(plan_result.plan.power_w, axis=1)                      # (N,) W
    worst = 0.0
    for disc in discs:
        e = _points_in(disc, rng)
        d2 = s.altitude_m ** 2 + np.sum((q[:, None, :] - e[None]) ** 2, axis=-1)   # (N, M)
        snr = p_max[:, None] * s.gamma0 / d2
        worst = max(worst, float(np.max(snr)) / s.gamma_tol)
    return worst


# --------------------------------------------------------------------------------------------
# a disc that can never bind changes nothing
# --------------------------------------------------------------------------------------------
def test_a_far_second_disc_reproduces_the_one_disc_plans():
    one = _plans(eve_discs=(NEAR,))
    two = _plans(eve_discs=(NEAR, FAR))
    # the far disc gets no S-procedure block, so both use the same compiled problems and the
    # same cap: the very same plans (with a block for it they differ by ~1e-6 of EE, solver noise)
    for a, b in ((one[2], two[2]), (one[3], two[3])):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.velocities, b.velocities)
        np.testing.assert_array_equal(a.plan.power_w, b.plan.power_w)
        np.testing.assert_array_equal(a.plan.user, b.plan.user)
        assert a.energy_efficiency == b.energy_efficiency
    assert one[2].history == two[2].history and one[3].history == two[3].history


def test_the_far_disc_is_left_out_of_the_convex_steps_but_kept_in_the_cap():
    s = make_scenario("cai2019", **QUICK, eve_discs=(FAR, NEAR))
    c = model.SlotConstants.from_scenario(s)
    np.testing.assert_array_equal(tr._constraining_discs(s, c), np.array([NEAR]) / tr._POS)
    # a lone disc is always kept, however far
    lone = make_scenario("cai2019", **QUICK, eve_discs=(FAR,))
    np.testing.assert_array_equal(tr._constraining_discs(lone, model.SlotConstants.from_scenario(lone)),
                                  np.array([FAR]) / tr._POS)
    # sub-problem 1's cap is the tightest over every disc
    q, v = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    sp = power.SlotProblem.from_trajectory(s, q, v, s.user_xy)
    d2 = np.minimum(worst_case_disc_distance_sq(q[:, 0], q[:, 1], np.array([NEAR]), s.altitude_m),
                    worst_case_disc_distance_sq(q[:, 0], q[:, 1], np.array([FAR]), s.altitude_m))
    np.testing.assert_array_equal(sp.cap, s.gamma_tol * d2 / s.gamma0)


def test_the_cap_is_the_tightest_disc_s():
    a, b = (100.0, 50.0, 30.0), (220.0, -40.0, 60.0)
    s = make_scenario("cai2019", **QUICK, eve_discs=(a, b))
    q, v = model.straight_line(s.start_xy, s.end_xy, s.num_slots, s.slot_s)
    cap = power.SlotProblem.from_trajectory(s, q, v, s.user_xy).cap
    caps = [power.SlotProblem.from_trajectory(make_scenario("cai2019", **QUICK, eve_discs=(d,)), q, v,
                                              s.user_xy).cap for d in (a, b)]
    np.testing.assert_array_equal(cap, np.minimum(*caps))
    assert np.any(caps[0] < caps[1]) and np.any(caps[1] < caps[0])     # each disc binds somewhere


# --------------------------------------------------------------------------------------------
# two nearby discs: the plans never leak
# --------------------------------------------------------------------------------------------
def test_plans_against_two_nearby_discs_bind_both_and_never_leak():
    discs = ((90.0, 40.0, 30.0), (210.0, -30.0, 40.0))
    s, users, a3, joint = _plans(eve_discs=discs)
    rng = np.random.default_rng(20)
    for res in (a3, joint):
        assert _max_leakage_ratio(s, res, discs, rng) <= 1.0 + 1e-5
        out = model.trajectory_outcome(res.positions, res.velocities, res.plan.power_w, res.plan.user, users,
                                       model.SlotConstants.from_scenario(s))
        assert np.all(out["leakage_excess"] <= 0)
        # both discs constrain the plan: each one's own cap is met with equality at some slot
        p_max = np.max(res.plan.power_w, axis=1)
        for d in discs:
            own = s.gamma_tol * worst_case_disc_distance_sq(res.positions[:, 0], res.positions[:, 1],
                                                            np.array([d]), s.altitude_m) / s.gamma0
            assert np.any(p_max >= own * (1 - 1e-4)), d
    assert joint.energy_efficiency >= a3.energy_efficiency
    assert a3.energy_efficiency > a3.history[0]                   # Algorithm 3 moved the flight


def _drawn_discs(rng, length):
    centres = np.stack([rng.uniform(0.0, length, 2), rng.uniform(-150.0, 150.0, 2)], axis=-1)
    radii = rng.uniform(10.0, 80.0, 2)
    return tuple((float(x), float(y), float(r)) for (x, y), r in zip(centres, radii))


def _check_drawn(seeds):
    length = QUICK["end_xy"][0]
    leaks = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        discs = _drawn_discs(rng, length)
        s, users, a3, joint = _plans(eve_discs=discs)
        for res in (a3, joint):
            leaks.append(_max_leakage_ratio(s, res, discs, rng))
        assert joint.energy_efficiency >= a3.energy_efficiency
    assert max(leaks) <= 1.0 + 1e-5, max(leaks)


def test_plans_against_drawn_disc_pairs_never_leak():
    _check_drawn(range(1000, 1040))


@pytest.mark.slow
def test_plans_against_many_drawn_disc_pairs_never_leak():
    _check_drawn(range(2000, 2200))


# --------------------------------------------------------------------------------------------
# the compiled problems depend on J, not on where the discs are
# --------------------------------------------------------------------------------------------
def test_disc_placements_with_the_same_count_share_one_compiled_problem(compiles):
    compiled = compiles          # ids of the problems compiled (tests/conftest.py)
    tr._MODELS.clear()
    d1 = ((90.0, 40.0, 30.0), (210.0, -30.0, 40.0))
    d2 = ((60.0, -50.0, 20.0), (240.0, 60.0, 70.0))
    s1, u1, a1, _ = _plans(eve_discs=d1)
    models = len(tr._MODELS)
    assert len(set(compiled)) == len(compiled) == models == 2     # sub-problem 2's and the joint step's, once
    compiled.clear()
    # Algorithm 3 on another placement of two discs: sub-problem 2 compiles nothing
    s2 = make_scenario("cai2019", **QUICK, eve_discs=d2)
    a2 = tr.algorithm3(s2, u1)
    assert len(tr._MODELS) == models and compiled == []
    sca1, sca2 = tr._Sca(s1, a1.plan, u1), tr._Sca(s2, a2.plan, u1)
    assert sca1.problem is sca2.problem and sca1.j == sca2.j == 2
    assert not np.allclose(a1.positions, a2.positions)            # the discs did reach the problem
    # the joint step of the same schedule on either placement: one problem, no compile
    joint1, joint2 = tr._JointSca(s1, a1.plan.counts, u1), tr._JointSca(s2, a1.plan.counts, u1)
    assert joint1.problem is joint2.problem
    joint2.set_point(a1.positions, a1.velocities, a1.plan.mean_rate_bps)
    joint2.ratio_step()
    assert compiled == [] and len(tr._MODELS) == models
    assert sca1.problem.is_dcp(dpp=True) and joint1.problem.is_dcp(dpp=True)
    # a third disc is another problem
    three = make_scenario("cai2019", **QUICK, eve_discs=d1 + ((150.0, 0.0, 10.0),))
    assert tr._Sca(three, a1.plan, u1).j == 3
    assert len(tr._MODELS) == models + 1
