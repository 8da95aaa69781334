"""J eavesdropper discs, drawn eavesdroppers and realised secrecy in the UAV envs (issue 20, the env
side; the planners' side is in tests/test_planners_multi_eve.py).

Leakage is checked by an independent route: points sampled densely in every disc (and on its
circle), the SNR p_max beta0 / (N0 W (H^2 + ||q - e||^2)) computed from the info's position and
peak subcarrier power, never through the library's worst-case distance.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secure_env  # noqa: F401
from secure_env.core import tokens
from secure_env.scenarios import make_scenario

UAV = "secure_env/UavSecureOfdma-v0"
QUANTUM = "secure_env/QuantumUav-v0"
FAR = (1e6, 1e6, 10.0)


def _run(env, actions):
    """Every (obs, reward, terminated, info) of one episode under ``actions``."""
    out = []
    for a in actions:
        obs, r, t, _, info = env.step(a)
        out.append((obs, r, t, info))
        if t:
            break
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for (o1, r1, t1, i1), (o2, r2, t2, i2) in zip(a, b):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and t1 == t2
        assert set(i1) == set(i2)
        for key in i1:
            if key == "episode_metrics":
                assert i1[key] == i2[key]
            else:
                np.testing.assert_array_equal(np.asarray(i1[key]), np.asarray(i2[key]), err_msg=key)


@pytest.mark.parametrize("env_id", [UAV, QUANTUM])
@pytest.mark.parametrize("mode", ["full", "compact", "velocity"])
def test_a_far_second_disc_reproduces_one_disc_step_for_step(env_id, mode):
    """J = 2 with the second disc a thousand km away plays exactly as J = 1 (the paper's one disc):
    same observations, rewards and infos, bit for bit, in every action mode (safety layer on in
    the learnable modes, and on in the full mode too)."""
    kw = dict(num_slots=12, end_xy=(300.0, 0.0), random_users=True, num_subcarriers=16, action_mode=mode,
              eve_xy=(150.0, 20.0), eve_radius_m=40.0, safety_layer=True)
    two = dict(kw, eve_xy=(500.0, 0.0), eve_radius_m=50.0, eve_discs=((150.0, 20.0, 40.0), FAR))
    one_env, two_env = gym.make(env_id, **kw), gym.make(env_id, **two)
    assert two_env.unwrapped.scenario.num_eve_discs == 2
    rng = np.random.default_rng(3)
    for seed in (0, 1):
        acts = rng.uniform(-1, 1, (12,) + one_env.action_space.shape).astype(np.float32)
        o1, _ = one_env.reset(seed=seed)
        o2, _ = two_env.reset(seed=seed)
        np.testing.assert_array_equal(o1, o2)
        _assert_same(_run(one_env, acts), _run(two_env, acts))


def _dense_leakage(pos, peak_w, discs, scenario, rng, samples=1500):
    """Largest SNR any point of any disc gets: (B,) from positions (B, 2), peak powers (B,), discs
    (B, J, 3); the disc's interior sampled uniformly, its circle at ``samples`` angles, its centre."""
    b, j = discs.shape[:2]
    u = rng.random((b, j, samples))
    ang = rng.random((b, j, samples)) * 2 * math.pi
    rad = discs[..., 2:3] * np.sqrt(u)
    circ = np.linspace(0.0, 2 * math.pi, samples, endpoint=False)
    xs = np.concatenate([discs[..., 0:1] + rad * np.cos(ang), discs[..., 0:1] + discs[..., 2:3] * np.cos(circ),
                         discs[..., 0:1]], axis=-1)
    ys = np.concatenate([discs[..., 1:2] + rad * np.sin(ang), discs[..., 1:2] + discs[..., 2:3] * np.sin(circ),
                         discs[..., 1:2]], axis=-1)
    d2 = (xs - pos[:, None, None, 0]) ** 2 + (ys - pos[:, None, None, 1]) ** 2 + scenario.altitude_m ** 2
    return peak_w * scenario.gamma0 / d2.reshape(b, -1).min(axis=-1)


@pytest.mark.parametrize("mode, safety", [("velocity", None), ("compact", True), ("full", True)])
def test_dense_sampling_finds_no_leakage_with_two_nearby_discs(mode, safety):
    """200 drawn scenarios (two drawn discs each, radii 20-120 m, in the users' strip) flown by
    random actions through the velocity rule or the safety layer: in no slot does any sampled point
    of any disc see an SNR above gamma_tol (up to the model's relative slack of 1e-5)."""
    b = 200
    kw = dict(random_users=True, random_eves=True, num_eves=2, eve_radius_range_m=(20.0, 120.0),
              action_mode=mode, safety_layer=safety, num_slots=20, end_xy=(600.0, 0.0),
              user_area_xy=((0.0, -200.0), (600.0, 200.0)), eve_area_xy=((50.0, -150.0), (550.0, 150.0)))
    venv = gym.make_vec(UAV, num_envs=b, vectorization_mode="vector_entry_point", **kw)
    _, info0 = venv.reset(seed=123)
    discs = info0["eve_discs"]
    assert discs.shape == (b, 2, 3) and len(np.unique(discs[:, 0, 0])) == b     # 200 different scenarios
    s = venv.unwrapped.scenario
    rng = np.random.default_rng(7)
    venv.action_space.seed(5)
    worst = 0.0
    for _ in range(s.num_slots):
        a = venv.action_space.sample()
        a[: b // 4] = np.sign(a[: b // 4])            # a quarter pushes every command to a bound
        _, _, _, _, info = venv.step(a)
        snr = _dense_leakage(info["position_m"], info["peak_subcarrier_power_w"], discs, s, rng)
        assert np.all(snr <= s.gamma_tol * (1 + 1e-5)), snr.max()
        worst = max(worst, float(snr.max()))
    assert worst > 0.9 * s.gamma_tol     # the discs did bind somewhere (the check is not vacuous)


def test_the_cap_is_the_tightest_disc_and_violations_count_against_any_disc():
    """Without the safety layer, full power near the second disc leaks against it even though the
    first disc is far: the worst case is over every disc."""
    kw = dict(num_slots=3, end_xy=(60.0, 0.0), num_subcarriers=4, action_mode="full", random_users=False,
              user_xy=((30.0, 0.0), (30.0, 5.0), (30.0, -5.0)))
    far = gym.make(UAV, **kw, eve_discs=(FAR,))
    near = gym.make(UAV, **kw, eve_discs=(FAR, (30.0, 0.0, 10.0)))
    a = np.ones(far.action_space.shape, dtype=np.float32)
    a[0:2] = (1.0, 0.0)
    for env, leaks in ((far, False), (near, True)):
        env.reset(seed=0)
        _, _, _, _, info = env.step(a)
        assert bool(info["leakage_violation"]) is leaks
        s = env.unwrapped.scenario
        d2 = min(s.altitude_m ** 2 + max(math.dist(info["position_m"], (x, y)) - r, 0.0) ** 2
                 for x, y, r in s.eavesdroppers)
        assert info["leakage_snr_max"] == pytest.approx(info["peak_subcarrier_power_w"] * s.gamma0 / d2, rel=1e-12)


def test_drawn_eavesdroppers_are_reproducible_from_the_seed_and_inside_their_ranges():
    kw = dict(random_users=True, random_eves=True, num_eves=3, eve_radius_range_m=(10.0, 80.0),
              eve_area_xy=((100.0, -100.0), (900.0, 100.0)))
    env, again = gym.make(UAV, **kw), gym.make(UAV, **kw)
    seen = []
    for seed in range(20):
        _, info = env.reset(seed=seed)
        _, info2 = again.reset(seed=seed)
        np.testing.assert_array_equal(info["eve_discs"], info2["eve_discs"])
        geo, geo2 = env.unwrapped.geometry(), again.unwrapped.geometry()
        np.testing.assert_array_equal(geo["eve_truth_xy"], geo2["eve_truth_xy"])
        d = info["eve_discs"]
        assert d.shape == (3, 3)
        assert np.all((d[:, 0] >= 100) & (d[:, 0] <= 900) & (d[:, 1] >= -100) & (d[:, 1] <= 100))
        assert np.all((d[:, 2] >= 10) & (d[:, 2] <= 80))
        # the true positions lie in their discs
        assert np.all(np.hypot(*(geo["eve_truth_xy"] - d[:, :2]).T) <= d[:, 2] + 1e-9)
        seen.append(d.tobytes())
    assert len(set(seen)) == 20
    # the users of a seed do not depend on whether the eavesdroppers are drawn (drawn after them)
    plain = gym.make(UAV, random_users=True)
    for seed in range(5):
        _, a = plain.reset(seed=seed)
        _, b = env.reset(seed=seed)
        np.testing.assert_array_equal(a["user_xy"], b["user_xy"])


def test_the_truth_draw_changes_no_other_draw_of_the_stream():
    """Consecutive unseeded resets draw the same users as a bare generator with the same seed: the
    true eavesdropper positions come from a jumped copy of the env's generator, not from it."""
    env = gym.make(UAV, random_users=True)
    env.reset(seed=42)
    rng, _ = seeding.np_random(42)
    s = env.unwrapped.scenario
    lo, hi = (np.asarray(c) for c in s.user_area_xy)
    np.testing.assert_array_equal(env.unwrapped.geometry()["user_xy"], lo + (hi - lo) * rng.random((3, 2)))
    for _ in range(3):
        _, info = env.reset()
        np.testing.assert_array_equal(info["user_xy"], lo + (hi - lo) * rng.random((3, 2)))


def test_realised_secrecy_by_brute_force():
    """The episode's worst-case and realised secrecy rates and leakage, recomputed slot by slot and
    subcarrier by subcarrier with math.log2 from the infos and the true positions."""
    kw = dict(num_slots=6, end_xy=(150.0, 0.0), num_subcarriers=6, random_users=True, random_eves=True,
              num_eves=2, eve_radius_range_m=(10.0, 40.0), user_area_xy=((0.0, -60.0), (150.0, 60.0)),
              eve_area_xy=((20.0, -40.0), (130.0, 40.0)), action_mode="full")
    env = gym.make(UAV, **kw)
    env.reset(seed=9)
    u = env.unwrapped
    geo = u.geometry()
    s, c = u.scenario, u.constants
    users, discs, truth = geo["user_xy"], geo["eve_discs"], geo["eve_truth_xy"]
    rng = np.random.default_rng(1)
    wc_sum = real_sum = 0.0
    real_leak = wc_leak = 0.0
    for _ in range(s.num_slots):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, _, done, _, info = env.step(a)
        from secure_env.core.uav_ofdma import decode_action
        # power and users as the env played them: the full mode's decode, scaled to the budget
        _, p, k = decode_action(a, c)
        p = p * min(1.0, info["transmit_power_w"] / p.sum()) if p.sum() > 0 else p
        assert float(p.sum()) == pytest.approx(info["transmit_power_w"], rel=1e-12)
        qx, qy = info["position_m"]
        wc_d2 = min(s.altitude_m ** 2 + max(math.hypot(qx - x, qy - y) - r, 0.0) ** 2 for x, y, r in discs)
        tr_d2 = min(s.altitude_m ** 2 + (qx - x) ** 2 + (qy - y) ** 2 for x, y in truth)
        for d2, acc in ((wc_d2, "wc"), (tr_d2, "real")):
            rate = 0.0
            for pi, ki in zip(p.tolist(), k.tolist()):
                g_u = s.gamma0 / (s.altitude_m ** 2 + (users[ki, 0] - qx) ** 2 + (users[ki, 1] - qy) ** 2)
                rate += s.subcarrier_hz * max(math.log2(1 + pi * g_u) - math.log2(1 + pi * s.gamma0 / d2), 0.0)
            if acc == "wc":
                wc_sum += rate
            else:
                real_sum += rate
        real_leak = max(real_leak, max(p) * s.gamma0 / tr_d2)
        wc_leak = max(wc_leak, max(p) * s.gamma0 / wc_d2)
    assert done
    m = info["episode_metrics"]
    assert m["secrecy_rate_bps"] == pytest.approx(wc_sum / s.num_slots, rel=1e-9)
    assert m["realised_secrecy_rate_bps"] == pytest.approx(real_sum / s.num_slots, rel=1e-9)
    assert m["realised_leakage_snr_max"] == pytest.approx(real_leak, rel=1e-9)
    assert m["worst_case_leakage_snr_max"] == pytest.approx(wc_leak, rel=1e-9)
    # the worst case is a guarantee: the truth never leaks more, nor keeps less secrecy
    assert m["realised_leakage_snr_max"] <= m["worst_case_leakage_snr_max"] * (1 + 1e-12)
    assert m["realised_secrecy_rate_bps"] >= m["secrecy_rate_bps"] * (1 - 1e-12)


@pytest.mark.parametrize("kw, field", [
    (dict(eve_discs=[]), "eve_discs"),
    (dict(eve_discs=[(0.0, 0.0, -5.0)]), "eve_discs[0] radius"),
    (dict(eve_discs=[(0.0, 0.0, 5.0), (1.0, 2.0)]), "eve_discs[1]"),
    (dict(eve_discs=[(0.0, 0.0, 5.0)], eve_xy=(1.0, 1.0)), "eve_discs"),
    (dict(eve_discs=[(0.0, 0.0, 5.0)], eve_radius_m=20.0), "eve_discs"),
    (dict(random_eves=True, eve_discs=[(0.0, 0.0, 5.0)]), "eve_discs"),
    (dict(random_eves=True, eve_xy=(1.0, 1.0)), "eve_xy"),
    (dict(num_eves=2), "num_eves"),
    (dict(random_eves=True, num_eves=0), "num_eves"),
    (dict(random_eves=True, num_eves=17), "num_eves"),
    (dict(eve_radius_range_m=(1.0, 2.0)), "eve_radius_range_m"),
    (dict(random_eves=True, eve_radius_range_m=(20.0, 10.0)), "eve_radius_range_m"),
    (dict(random_eves=True, eve_radius_range_m=(-1.0, 10.0)), "eve_radius_range_m"),
    (dict(random_eves=True, eve_area_xy=((10.0, 0.0), (0.0, 10.0))), "eve_area_xy"),
    (dict(eve_area_xy=((0.0, 0.0), (10.0, 10.0))), "eve_area_xy"),
])
def test_bad_eavesdropper_keywords_raise_a_value_error_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        gym.make(UAV, **kw)


def test_a_start_inside_a_disc_is_allowed_and_never_leaks_with_the_safety_layer():
    """q0 (and qF) inside a disc keep the model well posed: the cap there is gamma_tol H^2 / gamma0 > 0."""
    env = gym.make(UAV, eve_discs=((0.0, 0.0, 80.0), (1000.0, 0.0, 80.0)), action_mode="velocity")
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
        assert not info["leakage_violation"]
    assert info["episode_metrics"]["destination_reached"] == 1.0


def test_set_observation_holds_one_token_per_disc_and_permuting_discs_permutes_them():
    discs = ((300.0, 50.0, 30.0), (600.0, -80.0, 60.0), (800.0, 120.0, 10.0))
    kw = dict(observation_mode="set", action_mode="velocity", random_users=True)
    env = gym.make(UAV, **kw, eve_discs=discs)
    perm = gym.make(UAV, **kw, eve_discs=discs[::-1])
    lay = env.unwrapped.observation_layout
    assert lay["extra_token_groups"] == [[3, tokens.EVE_TOKEN_WIDTH]]
    g, m, w = lay["global_dim"], lay["num_tokens"], lay["token_dim"]
    assert env.observation_space.shape == (g + m * w + 3 * tokens.EVE_TOKEN_WIDTH,)
    o1, _ = env.reset(seed=4)
    o2, _ = perm.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        for o_a, o_b in ((o1, o2),):
            np.testing.assert_array_equal(o_a[:g + m * w], o_b[:g + m * w])
            t1 = o_a[g + m * w:].reshape(3, -1)
            t2 = o_b[g + m * w:].reshape(3, -1)
            np.testing.assert_array_equal(t1, t2[::-1])
            assert np.all(t1[:, -1] == 1.0)
        o1, *_ = env.step(a)
        o2, *_ = perm.step(a)
    # the paper's single fixed disc adds no token (its disc is in the global features)
    assert "extra_token_groups" not in gym.make(UAV, **kw).unwrapped.observation_layout


def test_the_set_encoder_reads_the_disc_tokens():
    import torch

    from agents.encoders import UserSetExtractor

    env = gym.make(UAV, observation_mode="set", action_mode="velocity", random_eves=True, num_eves=2)
    enc = UserSetExtractor(env.observation_space, **env.unwrapped.observation_layout)
    obs, _ = env.reset(seed=0)
    x = torch.as_tensor(obs[None])
    base = enc(x)
    moved = x.clone()
    moved[0, -tokens.EVE_TOKEN_WIDTH] += 0.5          # the last disc token's offset
    assert not torch.allclose(enc(moved), base)


def test_layout_scenario_writes_the_drawn_layout_in():
    env = gym.make(UAV, random_users=True, random_eves=True, num_eves=2, eve_radius_m=30.0)
    env.reset(seed=3)
    u = env.unwrapped
    fixed = u.layout_scenario()
    geo = u.geometry()
    assert not fixed.random_users and not fixed.random_eves
    np.testing.assert_array_equal(np.asarray(fixed.user_xy), geo["user_xy"])
    np.testing.assert_array_equal(np.asarray(fixed.eavesdroppers), geo["eve_discs"])
    plain = gym.make(UAV)
    plain.reset(seed=0)
    assert plain.unwrapped.layout_scenario() is plain.unwrapped.scenario


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(j=st.integers(1, 4), r=st.tuples(st.floats(0.0, 150.0), st.floats(0.0, 150.0)),
       mode=st.sampled_from(["compact", "velocity"]), env_id=st.sampled_from([UAV, QUANTUM]),
       seed=st.integers(0, 2 ** 31 - 1), drawn=st.booleans())
def test_property_new_keywords_keep_the_spaces_and_never_leak_with_the_safety_layer(j, r, mode, env_id, seed, drawn):
    lo, hi = min(r), max(r)
    kw = dict(num_slots=8, end_xy=(200.0, 0.0), num_subcarriers=8, action_mode=mode, random_users=True,
              user_area_xy=((0.0, -80.0), (200.0, 80.0)), observation_mode="set")
    if drawn:
        kw.update(random_eves=True, num_eves=j, eve_radius_range_m=(lo, hi), eve_area_xy=((0.0, -80.0), (200.0, 80.0)))
    else:
        rng = np.random.default_rng(seed)
        kw["eve_discs"] = [(float(x), float(y), float(rr)) for x, y, rr in
                           zip(rng.uniform(0, 200, j), rng.uniform(-80, 80, j), rng.uniform(lo, hi, j))]
    env = gym.make(env_id, **kw)
    obs, info = env.reset(seed=seed)
    assert obs in env.observation_space and info["eve_discs"].shape == (j, 3)
    env.action_space.seed(seed)
    done = False
    while not done:
        obs, reward, done, _, info = env.step(env.action_space.sample())
        assert obs in env.observation_space and math.isfinite(reward)
        assert not info["leakage_violation"]
    m = info["episode_metrics"]
    assert m["leakage_violations"] == 0 and m["destination_reached"] == 1.0
    assert m["worst_case_leakage_snr_max"] <= env.unwrapped.scenario.gamma_tol * (1 + 1e-5)
    assert m["realised_leakage_snr_max"] <= m["worst_case_leakage_snr_max"] * (1 + 1e-12)   # r = 0: the same point


def test_make_scenario_eavesdroppers_property():
    assert make_scenario("cai2019").eavesdroppers == ((500.0, 0.0, 50.0),)
    s = make_scenario("cai2019", eve_discs=[[1, 2, 3], [4, 5, 6]])
    assert s.eavesdroppers == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)) and s.num_eve_discs == 2 and s.eve_tokens == 2
    assert make_scenario("cai2019", random_eves=True, num_eves=4).num_eve_discs == 4


# -- variable K (num_users_range) --------------------------------------------------------------------
def test_the_number_of_users_is_drawn_per_episode_reproducibly_and_masks_hide_absent_users():
    kw = dict(num_users_range=(2, 5), random_users=True, action_mode="compact", num_slots=6, end_xy=(150.0, 0.0),
              num_subcarriers=8, user_area_xy=((0.0, -60.0), (150.0, 60.0)))
    env, again = gym.make(UAV, **kw), gym.make(UAV, **kw)
    s = env.unwrapped.scenario
    assert s.num_users == 5 and env.action_space.shape == (3 + 5,)
    assert env.observation_space.shape == (12 + 3 * 5 + 6 + 5,)          # ... + the user mask
    counts = set()
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        obs2, info2 = again.reset(seed=seed)
        np.testing.assert_array_equal(obs, obs2)
        k = int(info["user_mask"].sum())
        counts.add(k)
        assert 2 <= k <= 5 and np.array_equal(info2["user_mask"], info["user_mask"])
        np.testing.assert_array_equal(info["user_mask"], np.arange(5) < k)
        assert info["user_xy"].shape == (5, 2) and np.all(info["user_xy"][k:] == 0)
        np.testing.assert_array_equal(env.unwrapped.geometry()["user_xy"], info["user_xy"][:k])
        # the first k users are the ones a fixed-K env of the same seed draws (the draw order is kept)
        fixed_k = {key: v for key, v in kw.items() if key != "num_users_range"}
        np.testing.assert_array_equal(info["user_xy"][:k], gym.make(UAV, **fixed_k, num_users=5).reset(
            seed=seed)[1]["user_xy"][:k])
        offsets, delivered = obs[12:22].reshape(5, 2), obs[22:27]
        mask = obs[-5:]
        np.testing.assert_array_equal(mask, [1.0] * k + [0.0] * (5 - k))
        assert np.all(offsets[k:] == 0) and np.all(delivered[k:] == 0)
        assert env.unwrapped.constants.num_users == k
        # an absent user's share changes nothing: the same step with that entry flipped
        if k < 5:
            a = np.zeros(env.action_space.shape, dtype=np.float32)
            b = a.copy()
            b[3 + k:] = 1.0
            step_a = env.step(a)
            step_b = again.step(b)
            np.testing.assert_array_equal(step_a[0], step_b[0])
            assert step_a[1] == step_b[1]
            np.testing.assert_array_equal(step_a[4]["bits_per_user"], step_b[4]["bits_per_user"])
            assert step_a[4]["bits_per_user"].shape == (5,) and np.all(step_a[4]["bits_per_user"][k:] == 0)
    assert counts == {2, 3, 4, 5}


@pytest.mark.parametrize("env_id", [UAV, QUANTUM])
def test_variable_k_set_observation_pads_tokens_and_the_episode_scores_the_present_users(env_id):
    env = gym.make(env_id, num_users_range=(1, 4), random_users=True, action_mode="velocity",
                   observation_mode="set", max_users=6)
    lay = env.unwrapped.observation_layout
    g, m, w = lay["global_dim"], lay["num_tokens"], lay["token_dim"]
    assert m == 6
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        k = int(info["user_mask"].sum())
        toks = obs[g:g + m * w].reshape(m, w)
        np.testing.assert_array_equal(toks[:, -1], [1.0] * k + [0.0] * (m - k))
        assert np.all(toks[k:] == 0)
        assert obs[g - 1] == pytest.approx(k / 6)
        done = False
        while not done:
            obs, _, done, _, info = env.step(env.action_space.sample())
        met = info["episode_metrics"]
        assert met["leakage_violations"] == 0 and met["destination_reached"] == 1.0
        assert info["bits_per_user"].shape == (4,) and np.all(info["bits_per_user"][k:] == 0)


def test_variable_k_in_vector_envs_and_bad_ranges():
    """The native vector env plays episodes of different k side by side (equal to single envs:
    tests/test_vector_envs.py); gymnasium's SyncVectorEnv stacks their infos."""
    native = gym.make_vec(UAV, num_envs=6, vectorization_mode="vector_entry_point", num_users_range=(1, 4),
                          random_users=True, action_mode="velocity")
    _, info = native.reset(seed=5)
    assert len(set(info["user_mask"].sum(axis=1))) > 1
    # gymnasium's own vector envs stack the infos: every per-user entry has K rows (absent: zeros)
    for env_id in (UAV, QUANTUM):
        sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", num_users_range=(1, 4), random_users=True,
                            action_mode="compact", num_slots=5, end_xy=(120.0, 0.0), num_subcarriers=8)
        _, info = sync.reset(seed=5)
        assert info["user_xy"].shape == (3, 4, 2) and len(set(info["user_mask"].sum(axis=1))) > 1
        sync.action_space.seed(0)
        for _ in range(11):                                   # through an autoreset (step 6), then a step
            _, _, _, _, info = sync.step(sync.action_space.sample())
        assert info["bits_per_user"].shape == (3, 4)
    for kw, field in [(dict(num_users_range=(2, 4)), "num_users_range"),
                      (dict(num_users_range=(4, 2), random_users=True), "num_users_range"),
                      (dict(num_users_range=(0, 2), random_users=True), "num_users_range"),
                      (dict(num_users_range=(2, 65), random_users=True), "num_users_range"),
                      (dict(num_users_range=(1.5, 3), random_users=True), "num_users_range"),
                      (dict(num_users_range=(2, 4), num_users=3, random_users=True), "num_users"),
                      (dict(num_users_range=(2, 4), random_users=True, observation_mode="set", max_users=3),
                       "max_users")]:
        with pytest.raises(ValueError, match=field):
            gym.make(UAV, **kw)


def _fly_every_baseline(env_id, kw, seeds, on_step=None):
    """Every baseline of ``env_id`` flies the drawn scenarios of ``seeds``: no leaking or
    power-violating slot, q_F reached; yields (name, index, policy, env, episode metrics)."""
    from baselines import BASELINES

    for name, cls in BASELINES[env_id].items():
        env = gym.make(env_id, **kw)
        policy = cls(env)
        for i, seed in enumerate(seeds):
            obs, info0 = env.reset(seed=seed)
            done = False
            while not done:
                action, _ = policy.predict(obs, deterministic=True)
                obs, _, done, _, info = env.step(action)
                if on_step is not None:
                    on_step(name, seed, env, info0, info)
            m = info["episode_metrics"]
            assert m["leakage_violations"] == 0 and m["power_violations"] == 0, (name, seed)
            assert m["destination_reached"] == 1.0, (name, seed)
            yield name, i, policy, env, m


@pytest.mark.parametrize("env_id", [UAV, QUANTUM])
def test_every_baseline_plans_drawn_eavesdroppers_and_users_without_leaking(env_id):
    """Every baseline of the env on drawn scenarios (two drawn discs, 1-4 drawn users) of a short
    mission: no crash, no leakage (also by dense sampling), q_F reached, R_min met or its shortfall
    reported by the plan; the plan is for the episode's own users and discs."""
    kw = dict(num_users_range=(1, 4), random_users=True, random_eves=True, num_eves=2,
              eve_radius_range_m=(20.0, 80.0), num_slots=12, end_xy=(300.0, 0.0), num_subcarriers=16,
              user_area_xy=((0.0, -120.0), (300.0, 120.0)), eve_area_xy=((30.0, -100.0), (270.0, 100.0)),
              action_mode="full", safety_layer=False)
    rng = np.random.default_rng(11)

    def dense(name, seed, env, info0, info):
        snr = _dense_leakage(info["position_m"][None], np.array([info["peak_subcarrier_power_w"]]),
                             info0["eve_discs"][None], env.unwrapped.scenario, rng, samples=500)
        assert snr[0] <= env.unwrapped.scenario.gamma_tol * (1 + 1e-5), (name, seed)

    for name, i, policy, env, m in _fly_every_baseline(env_id, kw, range(500, 504), dense):
        if m["min_rate_shortfall_bps"] > 1e-6 * env.unwrapped.scenario.r_min_bps:
            assert np.any(policy.rmin_shortfall_bps > 0), (name, i)
        assert policy.stats["plans"] == i + 1


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [UAV, QUANTUM])
def test_slow_sweep_every_baseline_plans_120_drawn_scenarios(env_id):
    """120 drawn scenarios at the default mission size (N = 50, N_F = 128), two drawn discs of
    radius 20-150 m and 2-6 drawn users: every baseline plans every one without a crash, a leaking
    slot or a power violation, and reaches q_F."""
    kw = dict(num_users_range=(2, 6), random_users=True, random_eves=True, num_eves=2,
              eve_radius_range_m=(20.0, 150.0), action_mode="full", safety_layer=False)
    runs = list(_fly_every_baseline(env_id, kw, range(700_000, 700_120)))
    assert len(runs) == 120 * len({name for name, *_ in runs})


def test_set_layout_gives_another_envs_layout_and_the_refine_source_flies_it():
    """``set_layout`` puts a drawn layout (k users, J discs) into a fresh episode: the observation
    then equals that of the env that drew it; agents.refine flies an agent over it that way."""
    from agents.refine import agent_flight_source

    kw = dict(num_users_range=(2, 5), random_users=True, random_eves=True, num_eves=2, action_mode="velocity",
              num_slots=10, end_xy=(250.0, 0.0), user_area_xy=((0.0, -100.0), (250.0, 100.0)))
    drawn = gym.make(UAV, **kw)
    obs_drawn, _ = drawn.reset(seed=31)
    geo = drawn.unwrapped.geometry()
    other = gym.make(UAV, **kw)
    other.reset(seed=5)
    obs = other.unwrapped.set_layout(geo["user_xy"], geo["eve_discs"])
    np.testing.assert_array_equal(obs, obs_drawn)
    a = np.array([0.3, -0.2], dtype=np.float32)
    np.testing.assert_array_equal(other.step(a)[0], drawn.step(a)[0])
    with pytest.raises(RuntimeError, match="reset"):
        other.unwrapped.set_layout(geo["user_xy"])
    other.reset(seed=5)
    with pytest.raises(ValueError, match="user_xy"):
        other.unwrapped.set_layout(np.zeros((6, 2)))
    with pytest.raises(ValueError, match="eve_discs"):
        other.unwrapped.set_layout(geo["user_xy"], geo["eve_discs"][:1])

    class Straight:
        def predict(self, obs, deterministic=True):
            return np.array([1.0, 0.0], dtype=np.float32), None

    pos, vel = agent_flight_source(Straight(), UAV, kw)(geo)
    assert pos.shape == (10, 2) and vel.shape == (10, 2)
    assert np.allclose(pos[-1], (250.0, 0.0), atol=1e-6)      # the safety layer homes it to q_F
