"""Theorems 1-2, Algorithm 1, EXH and TDMA of Yang et al. 2019 against independent routes."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401
from baselines import BASELINES
from baselines.yang2019.algorithm1 import algorithm1
from baselines.yang2019.exh import exhaustive
from baselines.yang2019.policies import Algorithm1Policy, ExhPolicy, TdmaPolicy
from baselines.yang2019.tdma import tdma
from baselines.yang2019.theorems import (eps_for_common_rate, snap_to_photon_count, theorem1_closed_form,
                                        theorem1_powers, theorem2)
from secure_env.core import qkd_noma as model
from secure_env.core.noma import noma_rates, secure_rates
from secure_env.core.qkd import error_rate, photon_count, qkd_time
from secure_env.scenarios import make_scenario

ENV_ID = "secure_env/QkdNoma-v0"
N_FRAMES = 50


def draw_frames(scn, n, seed=2024):
    rng = np.random.default_rng(seed)
    pos = model.sample_user_positions(rng, scn, (n,))
    d = model.user_distances(pos, scn)
    return model.sample_gains(rng, d), d


# ---------------------------------------------------------------------------------------------
# Theorem 1
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_theorem1_equal_secure_rates_and_full_power(k):
    scn = make_scenario(num_users=k)
    gains, dist = draw_frames(scn, 20, seed=k)
    rng = np.random.default_rng(k)
    eps = rng.uniform(0.05, 0.6, size=gains.shape)
    t_data = scn.frame_s - qkd_time(eps, dist, scn.photons_m, scn.light_speed_mps).sum(-1)
    err = error_rate(eps, scn.alpha_beta)
    order = np.argsort(gains, axis=-1)
    h_s = np.take_along_axis(gains, order, -1)
    e_s = np.take_along_axis(err, order, -1)
    b = scn.frame_s / (t_data[:, None] * (1 - e_s) * scn.bandwidth_hz)
    p_s, r0 = theorem1_powers(h_s, b, scn.p_max_w, scn.noise_w)
    assert np.all(p_s >= 0)
    np.testing.assert_allclose(p_s.sum(-1), scn.p_max_w, rtol=1e-9)
    # secure rates evaluated by the model's own formulas (eqs. (9)-(10)), in sorted order
    rates = noma_rates(h_s, p_s, scn.noise_w, scn.bandwidth_hz)
    sec = secure_rates(rates, e_s, t_data, scn.frame_s)
    np.testing.assert_allclose(sec, np.broadcast_to(r0[:, None], sec.shape), rtol=1e-8)


def test_theorem1_closed_form_matches_recursion():
    scn = make_scenario(num_users=4)
    gains, _ = draw_frames(scn, 10)
    h_s = np.sort(gains, axis=-1)
    b = np.random.default_rng(0).uniform(0.9e-6, 1.2e-6, size=h_s.shape)
    p_rec, r0 = theorem1_powers(h_s, b, scn.p_max_w, scn.noise_w)
    p_cf = theorem1_closed_form(h_s, b, r0, scn.p_max_w, scn.noise_w)
    np.testing.assert_allclose(p_cf, p_rec, rtol=1e-6, atol=1e-12 * scn.p_max_w)


def test_theorem1_two_users_by_hand():
    """K = 2 worked through (C.2)-(C.3) with plain floats: equal SINR targets, p1 + p2 = P."""
    sigma2, p_max = 1e-13, 1.0
    h1, h2 = 1e-9, 8e-9
    b = np.array([[1.0e-6, 1.1e-6]])
    p, r0 = theorem1_powers(np.array([[h1, h2]]), b, p_max, sigma2)
    x1, x2 = 2 ** (b[0, 0] * r0[0]), 2 ** (b[0, 1] * r0[0])
    # strongest user alone after SIC: h2 p2 / sigma2 = x2 - 1
    p2 = (x2 - 1) * sigma2 / h2
    # weak user: h1 p1 / (h1 p2 + sigma2) = x1 - 1
    p1 = (x1 - 1) * (h1 * p2 + sigma2) / h1
    assert p[0, 1] == pytest.approx(p2, rel=1e-9)
    assert p[0, 0] == pytest.approx(p1, rel=1e-9)
    assert p1 + p2 == pytest.approx(p_max, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Theorem 2 and the rho route of the t_{K+1} search
# ---------------------------------------------------------------------------------------------
def test_theorem2_bisection_agrees_with_rho_route():
    """For t_{K+1} = T - sum_k t_k(eps(rho)), Theorem 2's bisection (supremum over R0 with the
    photon ceiling, unsnapped eps) and the rho route (closed-form eps, snapped to the photon count)
    agree to within one photon's worth of time (relative 1e-4 at these photon counts)."""
    scn = make_scenario()
    gains, dist = draw_frames(scn, 8)
    split = np.tile([0.8, 0.2], (8, 1))
    rates = noma_rates(gains, split * scn.p_max_w, scn.noise_w, scn.bandwidth_hz)
    rho = rates.min(-1) * (1 - np.array([0.002, 0.005, 0.01, 0.02, 0.03, 0.005, 0.01, 0.02]))
    eps = snap_to_photon_count(eps_for_common_rate(rho, rates, scn), scn)
    t_data = scn.frame_s - qkd_time(eps, dist, scn.photons_m, scn.light_speed_mps).sum(-1)
    route = secure_rates(rates, error_rate(eps, scn.alpha_beta), t_data, scn.frame_s).min(-1)
    r0, eps2 = theorem2(rates, dist, t_data[:, None], scn)
    np.testing.assert_allclose(r0[:, 0], route, rtol=1e-4)
    n_route = photon_count(eps, scn.photons_m)
    n_thm2 = photon_count(eps2[:, 0, :], scn.photons_m)
    assert np.all(np.abs(n_thm2 - n_route) <= 1), (n_route, n_thm2)
    # Theorem 2's eps meet the time budget and give every user at least R0
    used = qkd_time(eps2[:, 0], dist, scn.photons_m, scn.light_speed_mps).sum(-1)
    assert np.all(used <= scn.frame_s - t_data + 1e-15)
    sec = secure_rates(rates, error_rate(eps2[:, 0], scn.alpha_beta), t_data, scn.frame_s)
    assert np.all(sec >= r0 * (1 - 1e-12))


def test_snap_to_photon_count_keeps_time_lowers_error():
    scn = make_scenario()
    eps = np.linspace(0.05, 0.9, 200)
    snapped = snap_to_photon_count(eps, scn)
    np.testing.assert_array_equal(qkd_time(snapped, 300.0, 10, 3e8), qkd_time(eps, 300.0, 10, 3e8))
    assert np.all(snapped <= eps)
    # the boundary itself: eps = sqrt(8 m / N) exactly
    n = np.ceil(8 * scn.photons_m / eps**2)
    np.testing.assert_allclose(snapped, np.sqrt(8 * scn.photons_m / n), rtol=1e-15)


def test_theorem2_eps_formula_by_hand():
    """eps = 1 / (1 + sqrt(X - 1/2)), X = A t r / (2 (t r - R0 T)) at a hand point."""
    scn = make_scenario(alpha_beta=0.4)
    a = 4 * 0.4**2
    r, t, r0 = 5e6, 0.98, 4.7e6
    x = a * t * r / (2 * (t * r - r0 * scn.frame_s))
    expected = 1 / (1 + math.sqrt(x - 0.5))
    got = eps_for_common_rate(np.array(r0 * scn.frame_s / t), np.array([r]), scn)
    assert got[0] == pytest.approx(expected, rel=1e-12)
    # and the error rate at that eps is exactly the allowed loss 1 - R0 T / (t r)
    assert float(error_rate(got[0], 0.4)) == pytest.approx(1 - r0 * scn.frame_s / (t * r), rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Algorithm 1, EXH, TDMA
# ---------------------------------------------------------------------------------------------
def test_algorithm1_objective_non_decreasing_and_converges():
    scn = make_scenario(num_users=3)
    gains, dist = draw_frames(scn, 30, seed=5)
    starts = np.power(10.0, np.random.default_rng(1).uniform(-3, 0, size=gains.shape))
    for eps0 in (None, starts):
        plan = algorithm1(scn, gains, dist, eps0=eps0, max_iter=20)
        hist = np.array(plan.history)
        assert hist.shape[0] < 20, "Algorithm 1 did not converge within 20 iterations"
        assert np.all(np.diff(hist, axis=0) >= 0)
        np.testing.assert_array_equal(hist[-1], plan.objective_bps)
        # the reported objective is what the env metric gives for the plan
        out = model.play_frame(scn, gains, dist, plan.eps, plan.split)
        np.testing.assert_allclose(out["min_secure_rate_bps"], plan.objective_bps, rtol=1e-12)


def _brute_force_k2(scn, gains, dist):
    """Independent optimum for K = 2: grid-and-zoom over (log eps1, log eps2); for each pair the
    best full-power split is where the weak user's increasing rate meets the strong user's
    decreasing rate (bisection on the weak user's power, no Theorem 1). The decision behind eps is
    the integer photon count, so each grid eps is taken at its count's boundary sqrt(8 m / N)."""
    weak = int(np.argmin(gains))
    lo = np.log([5e-3, 5e-3])
    hi = np.log([0.9, 0.9])
    best = (-1.0, None)
    for _ in range(5):
        g1 = np.linspace(lo[0], hi[0], 41)
        g2 = np.linspace(lo[1], hi[1], 41)
        e1, e2 = np.meshgrid(g1, g2, indexing="ij")
        eps = np.exp(np.stack([e1.ravel(), e2.ravel()], -1))
        eps = np.sqrt(8 * scn.photons_m / np.ceil(8 * scn.photons_m / eps**2 * (1 - 1e-12)))
        a, b = np.zeros(len(eps)), np.ones(len(eps))
        for _ in range(60):
            mid = 0.5 * (a + b)
            split = np.zeros_like(eps)
            split[:, weak], split[:, 1 - weak] = mid, 1 - mid
            sec = model.play_frame(scn, gains, dist, eps, split)["secure_rate_bps"]
            weak_low = sec[:, weak] < sec[:, 1 - weak]
            a, b = np.where(weak_low, mid, a), np.where(weak_low, b, mid)
        split = np.zeros_like(eps)
        split[:, weak], split[:, 1 - weak] = a, 1 - a
        out = model.play_frame(scn, gains, dist, eps, split)
        val = np.where(out["feasible"], out["min_secure_rate_bps"], 0.0)
        i = int(np.argmax(val))
        if val[i] > best[0]:
            best = (float(val[i]), eps[i])
        step = np.array([g1[1] - g1[0], g2[1] - g2[0]])
        centre = np.log(eps[i])
        lo, hi = centre - step, np.minimum(centre + step, 0.0)
    return best[0]


def test_algorithm1_near_brute_force_and_exh_tdma_order():
    scn = make_scenario()
    gains, dist = draw_frames(scn, N_FRAMES, seed=7)
    alg1 = algorithm1(scn, gains, dist)
    rng = np.random.default_rng(0)
    gaps = []
    for f in range(N_FRAMES):
        brute = _brute_force_k2(scn, gains[f], dist[f])
        a1 = float(alg1.objective_bps[f])
        assert a1 <= brute * (1 + 1e-6), f"frame {f}: Algorithm 1 {a1} above brute force {brute}"
        gaps.append(1 - a1 / brute)
        exh = exhaustive(scn, gains[f], dist[f], rng)
        tdma_plan = tdma(scn, gains[f], dist[f])
        assert float(exh.objective_bps) >= a1, f"frame {f}: EXH below Algorithm 1"
        assert a1 >= float(tdma_plan.objective_bps), f"frame {f}: TDMA above Algorithm 1"
    gaps = np.array(gaps)
    assert gaps.mean() <= 1e-3, f"mean gap {gaps.mean():.2e}"
    assert gaps.max() <= 1e-2, f"worst gap {gaps.max():.2e}"


def test_tdma_is_optimal_against_grid():
    """TDMA's max-min over eps against a dense independent grid (shares in closed form)."""
    scn = make_scenario(multiple_access="tdma")
    gains, dist = draw_frames(scn, 6, seed=11)
    c = scn.bandwidth_hz * np.log2(1 + gains * scn.p_max_w / scn.noise_w)
    plan = tdma(scn, gains, dist)
    g = np.exp(np.linspace(np.log(0.02), np.log(0.8), 400))
    e1, e2 = np.meshgrid(g, g, indexing="ij")
    for f in range(len(gains)):
        eps = np.stack([e1.ravel(), e2.ravel()], -1)
        t_data = scn.frame_s - qkd_time(eps, dist[f], scn.photons_m, scn.light_speed_mps).sum(-1)
        inv = (1 / ((1 - error_rate(eps, scn.alpha_beta)) * c[f])).sum(-1)
        grid_best = float(np.max(np.maximum(t_data, 0) / scn.frame_s / inv))
        assert plan.objective_bps[f] >= grid_best * (1 - 1e-6)
        assert plan.objective_bps[f] <= grid_best * (1 + 1e-3)


# ---------------------------------------------------------------------------------------------
# Policies played through the env
# ---------------------------------------------------------------------------------------------
def test_registry_and_policy_interface():
    assert set(BASELINES[ENV_ID]) == {"algorithm1", "tdma", "exh"}
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=0)
    pol = Algorithm1Policy(env)
    action, state = pol.predict(obs)
    assert state is None
    assert env.action_space.contains(action)
    batched, _ = pol.predict(obs[None])
    assert batched.shape == (1,) + env.action_space.shape
    with pytest.raises(ValueError, match="multiple_access"):
        TdmaPolicy(env)
    with pytest.raises(ValueError):
        Algorithm1Policy(gym.make("CartPole-v1"))


def test_policies_through_env_order_every_frame():
    """EXH >= Algorithm 1 >= TDMA on every frame as scored by the env itself (same seeds)."""
    envs = {name: gym.make(ENV_ID, frames_per_episode=5, **cls.env_overrides)
            for name, cls in BASELINES[ENV_ID].items()}
    pols = {name: cls(envs[name]) for name, cls in BASELINES[ENV_ID].items()}
    for seed in range(4):
        obs = {n: e.reset(seed=seed)[0] for n, e in envs.items()}
        for _ in range(5):
            got = {}
            for n, e in envs.items():
                action, _ = pols[n].predict(obs[n])
                obs[n], _, _, _, info = e.step(action)
                got[n] = info["min_secure_rate_bps"]
                # the env scores the plan as the planner computed it (float32 action rounding)
                assert got[n] == pytest.approx(float(pols[n].last_plan.objective_bps), rel=1e-5)
            assert got["exh"] >= got["algorithm1"] * (1 - 1e-6)
            assert got["algorithm1"] >= got["tdma"]


def test_exh_is_seeded():
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=3)
    a1, _ = ExhPolicy(env, seed=5).predict(obs)
    a2, _ = ExhPolicy(env, seed=5).predict(obs)
    np.testing.assert_array_equal(a1, a2)
