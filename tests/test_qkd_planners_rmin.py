"""The QKD planners meet R_min wherever it can be met (issue 22), and say "out of reach" only with
a certificate.

Before, ``algorithm3_qkd`` and ``straight_line_qkd`` sized the data phase for R_min as if there
were no QKD phase; the QKD time and the key errors then cut the secure rate below R_min on 5 and 9
of 20 drawn layouts (seeds 8000000..8000019, r_E = 50 m) by 80-160 bit/s. Now the power and
schedule are planned again with each rate weighted by its largest possible secure share
(:func:`baselines.quantum_uav.photons.secure_share_bound`). A shortfall left over comes with the
relaxation's least shortfall under those weights (:func:`baselines.cai2019.power.least_shortfall`),
checked here against an independent cvxpy model.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401
from baselines.cai2019 import power
from baselines.quantum_uav import photons
from baselines.quantum_uav.policies import Algorithm3QkdPolicy, StraightLineQkdPolicy
from secure_env.core import qkd
from secure_env.core import quantum_uav as qmodel
from secure_env.scenarios import make_scenario
from test_baselines_layouts import least_total_shortfall   # the independent cvxpy relaxation

ENV_ID = "secure_env/QuantumUav-v0"


def play(policy, env, seed):
    obs, _ = env.reset(seed=seed)
    while True:
        action, _ = policy.predict(obs)
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            return info["episode_metrics"]


def planner_env(**kw):
    return gym.make(ENV_ID, random_users=True, action_mode="full", safety_layer=False, **kw)


# layouts where the old planners missed R_min (secure rate, bit/s short): found with
# tests' seeds 8000000.. at the default r_E = 50 m and at r_E = 150 m
MISSED = [(Algorithm3QkdPolicy, 50.0, 8000000), (Algorithm3QkdPolicy, 50.0, 8000016),
          (Algorithm3QkdPolicy, 150.0, 8000016), (StraightLineQkdPolicy, 50.0, 8000001),
          (StraightLineQkdPolicy, 50.0, 8000010), (StraightLineQkdPolicy, 150.0, 8000016)]


@pytest.mark.parametrize("cls, radius, seed", MISSED)
def test_the_planners_now_meet_rmin_where_they_missed_it(cls, radius, seed):
    env = planner_env(eve_radius_m=radius)
    policy = cls(env)
    metrics = play(policy, env, seed)
    assert metrics["min_rate_shortfall_bps"] == 0.0
    assert metrics["qkd_overrun_slots"] == 0.0 and metrics["leakage_violations"] == 0.0
    assert metrics["power_violations"] == 0.0 and metrics["destination_reached"] == 1.0
    assert policy.qkd_replans_done >= 1 and policy.stats["rmin_infeasible_plans"] == 0
    assert np.all(policy.qkd_record["secure_rate_bps"] >= env.unwrapped.scenario.r_min_bps)


def test_the_paper_layout_plan_keeps_its_secure_ee():
    env = gym.make(ENV_ID, action_mode="full", safety_layer=False)
    policy = Algorithm3QkdPolicy(env)
    metrics = play(policy, env, 0)
    # 1539.7 bit/J before issue 22 (README); R_min is met without a re-plan on this layout
    assert metrics["secure_energy_efficiency_bits_per_joule"] >= 0.99 * 1539.7
    assert metrics["min_rate_shortfall_bps"] == 0.0 and metrics["qkd_overrun_slots"] == 0.0


def test_secure_share_bound_bounds_every_photon_count():
    """Brute force: the share (1 - e(N)) (tau - t(N) - others) / tau of every whole count N on a
    dense range stays below the bound, and the bound is within 0.5 % of the best count."""
    s = make_scenario("quantum_uav")
    positions = np.array([[100.0, 50.0], [400.0, -20.0], [900.0, 300.0]])
    users = np.asarray(s.user_xy, dtype=np.float64)
    bound = photons.secure_share_bound(s, positions, users)
    dist = qmodel.user_distances(positions[:, 0:1], positions[:, 1:2], users, s.altitude_m)
    lo = 8 * s.photons_m
    for n in range(len(positions)):
        shortest = dist[n] / s.light_speed_mps * lo
        for k in range(users.shape[0]):
            others = shortest.sum() - shortest[k]
            hi = int(s.slot_s * s.light_speed_mps / dist[n, k])
            counts = np.unique(np.concatenate([np.arange(lo, min(hi, 200_000)),
                                               np.geomspace(lo, hi, 200_000).astype(np.int64)])).astype(float)
            eps = qkd.basis_prob_for_photons(counts, s.photons_m)
            t = qkd.qkd_time(eps, dist[n, k], s.photons_m, s.light_speed_mps)
            share = (1.0 - qkd.error_rate(eps, s.alpha_beta)) * np.maximum(s.slot_s - t - others, 0.0) / s.slot_s
            assert share.max() <= bound[n, k]
            assert bound[n, k] <= share.max() * 1.005


@pytest.mark.parametrize("cls", [StraightLineQkdPolicy, Algorithm3QkdPolicy])
def test_out_of_reach_comes_with_a_certificate_an_independent_solve_confirms(cls):
    r_min = 5e5                       # out of reach on the straight line and on Algorithm 3's flight
    env = planner_env(r_min_bps=r_min)
    policy = cls(env)
    metrics = play(policy, env, 8000002)
    assert metrics["min_rate_shortfall_bps"] > 0
    assert policy.rmin_certified() and policy.stats["rmin_certified_plans"] == 1
    s, users = env.unwrapped.scenario, env.unwrapped.geometry()["user_xy"]
    bound = photons.secure_share_bound(s, policy.positions, users)
    sp = power.SlotProblem.from_trajectory(s, policy.positions, policy.velocities, users, rate_weight=bound)
    least = least_total_shortfall(sp, r_min)
    got = float(np.sum(policy.rmin_certified_shortfall_bps))
    assert got == pytest.approx(least, rel=1e-5)
    # no plan on this flight beats the relaxation: the planner's secure shortfall is at least it
    assert float(np.sum(policy.rmin_shortfall_bps)) >= got * (1 - 1e-6)


def test_least_shortfall_without_weights_matches_the_independent_model():
    env = planner_env(r_min_bps=2.5e5)
    policy = StraightLineQkdPolicy(env)
    play(policy, env, 8000003)
    s, users = env.unwrapped.scenario, env.unwrapped.geometry()["user_xy"]
    sp = power.SlotProblem.from_trajectory(s, policy.positions, policy.velocities, users)
    got = float(np.sum(power.least_shortfall(sp, 2.5e5)))
    assert got > 0 and got == pytest.approx(least_total_shortfall(sp, 2.5e5), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("radius", [50.0, 150.0])
@pytest.mark.parametrize("cls", [Algorithm3QkdPolicy, StraightLineQkdPolicy])
def test_qkd_planners_meet_rmin_on_120_drawn_layouts_or_certify_it_out_of_reach(cls, radius):
    env = planner_env(eve_radius_m=radius)
    policy = cls(env)
    problems = []
    for seed in range(8100000, 8100120):
        m = play(policy, env, seed)
        if m["qkd_overrun_slots"] or m["leakage_violations"] or m["power_violations"] or m["destination_reached"] < 1:
            problems.append(f"{seed}: a limit violated {m}")
        if m["min_rate_shortfall_bps"] > 0 and not policy.rmin_certified():
            problems.append(f"{seed}: R_min missed by {m['min_rate_shortfall_bps']:.1f} bit/s without a certificate")
    print(f"\n[qkd sweep] {cls.__name__} r_E {radius}: {dict(policy.stats)}")
    assert not problems, "\n".join(problems)
