"""The one-env fast paths of the action decoding give what the batch path gives, bit for bit.

Issue 19 moved the single env's K-sized bookkeeping to plain floats (largest-remainder shares,
the R_min pace guard, the pace debt, the layout features) and let the QKD phase of whole photon
counts skip re-deriving the count. Each claim is "the same arithmetic": checked here against the
batch path (arrays of one row) and, for the QKD time, against eq. (8) through
:func:`secure_env.core.qkd.qkd_time`, on drawn inputs.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secure_env.core import qkd
from secure_env.core import quantum_uav as qmodel
from secure_env.core import uav_actions
from secure_env.core import uav_ofdma as model
from secure_env.scenarios import make_scenario

FAST = settings(max_examples=200, deadline=None)
K = st.integers(1, 6)


@FAST
@given(st.data())
def test_apportion_one_env_equals_the_batch_path(data):
    k = data.draw(K)
    w = data.draw(arrays(np.float64, k, elements=st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    n = data.draw(st.integers(0, 300))
    one = uav_actions.apportion(w, n)
    batch = uav_actions.apportion(w[None, :], np.array([n]))[0]
    np.testing.assert_array_equal(one, batch)
    assert one.sum() == n and one.dtype == np.int64


@FAST
@given(st.data())
def test_reserved_counts_one_env_equals_the_batch_path(data):
    k = data.draw(K)
    debt = data.draw(arrays(np.float64, k, elements=st.floats(-1e7, 1e7)))
    bits = data.draw(arrays(np.float64, k, elements=st.one_of(st.just(0.0), st.floats(1e-3, 1e6))))
    nf = data.draw(st.integers(1, 256))
    one = uav_actions.reserved_counts(debt, bits, nf)
    batch = uav_actions.reserved_counts(debt[None, :], bits[None, :], nf)[0]
    np.testing.assert_array_equal(one, batch)
    assert one.dtype == np.int64 and one.sum() <= nf


def test_reserved_counts_beyond_int64_take_the_array_path():
    debt, bits = np.array([1e6, 5.0]), np.array([1e-300, 1.0])      # 1e306 subcarriers wanted
    np.testing.assert_array_equal(uav_actions.reserved_counts(debt, bits, 8),
                                  uav_actions.reserved_counts(debt[None], bits[None], 8)[0])


@FAST
@given(slot=st.integers(0, 49), delivered=arrays(np.float64, 3, elements=st.floats(0.0, 1e6)))
def test_pace_debt_and_layout_features_one_env_equal_the_batch_path(slot, delivered):
    s = make_scenario("cai2019")
    np.testing.assert_array_equal(uav_actions.pace_debt(delivered, slot, s),
                                  uav_actions.pace_debt(delivered[None], np.array([slot]), s)[0])
    users = np.asarray(s.user_xy, dtype=np.float64)
    one = uav_actions.layout_features(uav_actions.SlotState(123.4, -56.7, 0.0, 0.0, slot, users, delivered),
                                      s, 1000.0)
    batch = uav_actions.layout_features(
        uav_actions.SlotState(np.array([123.4]), np.array([-56.7]), np.zeros(1), np.zeros(1), np.array([slot]),
                              users[None], delivered[None]), s, 1000.0)[0]
    np.testing.assert_array_equal(one, batch)


@FAST
@given(qx=st.floats(-300.0, 1300.0), qy=st.floats(-400.0, 400.0))
def test_rule_phase_one_env_equals_the_batch_path_and_qkd_phase(qx, qy):
    s = make_scenario("quantum_uav")
    c = model.SlotConstants.from_scenario(s)
    users = np.asarray(s.user_xy, dtype=np.float64)
    photons, dist, phase = qmodel.rule_phase(s, c, qx, qy, users)
    bp, bd, bphase = qmodel.rule_phase(s, c, np.array([qx]), np.array([qy]), users[None])
    np.testing.assert_array_equal(photons, bp[0])
    np.testing.assert_array_equal(dist, bd[0])
    direct = qmodel.qkd_phase(photons, dist, s.photons_m, s.light_speed_mps, s.alpha_beta)
    for key in direct:
        np.testing.assert_array_equal(phase[key], bphase[key][0])
        np.testing.assert_array_equal(phase[key], direct[key])
    # the rule's budgets hold exactly its counts: the phase decide_slot reuses is theirs
    budget = qmodel.budget_for_photons(photons, dist, s.light_speed_mps)
    again, _ = qmodel.budget_phase(s, c, budget, qx, qy, users)
    for key in direct:
        np.testing.assert_array_equal(again[key], direct[key])


@FAST
@given(n=arrays(np.float64, 5, elements=st.integers(80, 10**8).map(float)),
       d=arrays(np.float64, 5, elements=st.floats(100.0, 2000.0)))
def test_qkd_phase_of_whole_counts_is_eq_8(n, d):
    """d / c N for whole counts N equals eq. (8)'s d / c ceil(8 m / eps^2) at eps = sqrt(8 m / N)."""
    got = qmodel.qkd_phase(n, d, 10, 3e8, 0.5)["qkd_time_s"]
    want = qkd.qkd_time(qkd.basis_prob_for_photons(n, 10), d, 10, 3e8)
    np.testing.assert_array_equal(got, want)


def test_qkd_phase_of_fractional_counts_keeps_eq_8_ceiling():
    n = np.array([80.5, 1234.25, 99999.9])
    d = np.array([150.0, 300.0, 450.0])
    got = qmodel.qkd_phase(n, d, 10, 3e8, 0.5)["qkd_time_s"]
    np.testing.assert_array_equal(got, d / 3e8 * np.ceil(n))


@pytest.mark.parametrize("alpha_beta", [0.5, 0.3, 0.123456789])
def test_error_rate_with_a_float_alpha_beta_equals_the_array_route(alpha_beta):
    eps = np.linspace(0.01, 1.0, 97)
    np.testing.assert_array_equal(qkd.error_rate(eps, alpha_beta), qkd.error_rate(eps, np.array(alpha_beta)))


@FAST
@given(st.data())
def test_counts_to_users_lays_out_blocks_in_order(data):
    """Against a plain loop: user k's block follows user k-1's; a row that fills less than the
    band leaves its last subcarriers to the last user (full rows take the np.repeat route)."""
    k, nf, b = data.draw(K), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 4))
    counts = np.array([data.draw(st.lists(st.integers(0, nf), min_size=k, max_size=k)) for _ in range(b)])
    full = data.draw(st.booleans())
    if full:   # scale each row to fill the band exactly
        counts = np.array([uav_actions.apportion(row.astype(float), nf) for row in counts])
    counts = np.array([r if r.sum() <= nf else uav_actions.apportion(r.astype(float), nf) for r in counts])
    want = np.full((b, nf), k - 1)
    for i, row in enumerate(counts):
        j = 0
        for user, n in enumerate(row):
            want[i, j:j + n] = user
            j += n
    np.testing.assert_array_equal(uav_actions.counts_to_users(counts, nf), want)
    np.testing.assert_array_equal(uav_actions.counts_to_users(counts[0], nf), want[0])


# -- issue 19, second pass: the velocity projection, the safety layer, the slot outcome ------------
@FAST
@given(c=arrays(np.float64, 2, elements=st.floats(-60.0, 60.0)), angle=st.floats(0.0, 6.3),
       speed=st.floats(0.0, 30.0), has=st.booleans())
def test_velocity_projection_on_floats_equals_the_array_path_bit_for_bit(c, angle, speed, has):
    """The one-env projection computes only the branch it returns; every branch (kept, speed disc,
    acceleration disc, crossing point) gives the array path's bits."""
    p = np.array([speed * np.cos(angle), speed * np.sin(angle)])
    one = model.project_velocity_xy(float(c[0]), float(c[1]), float(p[0]), float(p[1]), has, 30.0, 10.0)
    arr = model.project_velocity_xy(c[:1], c[1:], p[:1], p[1:], np.array([has]), 30.0, 10.0)
    assert (one[0], one[1], bool(one[2])) == (float(arr[0][0]), float(arr[1][0]), bool(arr[2][0]))
    assert isinstance(one[0], float) and isinstance(one[2], bool)


def test_velocity_projection_cases_reach_every_branch():
    """The drawn cases above are not all one branch: kept, speed disc, acceleration disc and the
    crossing point each occur (checked by where the result lies)."""
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(400):
        c = rng.uniform(-60.0, 60.0, 2)
        p = rng.uniform(-1.0, 1.0, 2)
        p *= rng.uniform(0.0, 30.0) / np.hypot(*p)
        vx, vy, proj = model.project_velocity_xy(float(c[0]), float(c[1]), float(p[0]), float(p[1]), True, 30.0, 10.0)
        on_speed = abs(np.hypot(vx, vy) - 30.0) < 1e-9
        on_acc = abs(np.hypot(vx - p[0], vy - p[1]) - 10.0) < 1e-9
        seen.add("kept" if not proj else ("both" if on_speed and on_acc else ("speed" if on_speed else "acc")))
    assert seen == {"kept", "speed", "acc", "both"}


@pytest.mark.parametrize("env_id", ["secure_env/UavSecureOfdma-v0", "secure_env/QuantumUav-v0"])
@pytest.mark.parametrize("mode", ["compact", "velocity", "full"])
def test_decide_slot_one_env_equals_a_batch_of_one(env_id, mode):
    """decide_slot on floats (the single env) and on arrays of one row (the vector env) agree in
    every entry along random episodes with the safety layer on: to the last bit but where the
    eavesdropper distance's square root differs (Python's x ** 0.5 is C's pow, numpy's is sqrt:
    at most an ulp, seen in the full mode), hence 1e-14 relative."""
    import gymnasium as gym

    env = gym.make(env_id, action_mode=mode, safety_layer=True, random_users=True).unwrapped
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(env.scenario.num_slots):
        a = rng.uniform(-1.3, 1.3, env.action_space.shape)
        st1 = env._slot_state()
        one = uav_actions.decide_slot(a, mode, True, env.constants, env.scenario, st1)
        st_b = uav_actions.SlotState(np.array([st1.qx]), np.array([st1.qy]), np.array([st1.vx]), np.array([st1.vy]),
                                     np.array([st1.slot]), st1.users[None], st1.delivered[None],
                                     np.asarray(st1.eves, dtype=np.float64)[None])
        batch = uav_actions.decide_slot(a[None], mode, True, env.constants, env.scenario, st_b)
        for key, value in one.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    np.testing.assert_allclose(np.asarray(v), np.asarray(batch[key][sub])[0], rtol=1e-14, atol=0,
                                               err_msg=f"{key}/{sub}")
            elif value is not None:
                np.testing.assert_allclose(np.asarray(value), np.asarray(batch[key])[0], rtol=1e-14, atol=0,
                                           err_msg=key)
        env.step(a)


def test_slot_outcome_reuse_equals_recomputation_bit_for_bit():
    """The realised secrecy from the outcome's 1 + p g and worst-case distance equals the one that
    gathers and recomputes them; the batch outcome's flat gather equals the single slot's."""
    import gymnasium as gym

    from secure_env.core.ofdma import squared_distance_xy

    env = gym.make("secure_env/UavSecureOfdma-v0", random_eves=True, num_eves=2).unwrapped
    env.reset(seed=9)
    c = env.constants
    rng = np.random.default_rng(9)
    b, nf, k = 5, c.num_subcarriers, c.num_users
    qx, qy = rng.uniform(0, 1000, b), rng.uniform(-200, 200, b)
    power = rng.uniform(0, 0.05, (b, nf))
    power[2] = 0.0
    user = rng.integers(0, k, (b, nf))
    users = np.broadcast_to(env._users, (b, k, 2)).copy()
    eves = np.broadcast_to(env._eves, (b,) + env._eves.shape).copy()
    truth = np.broadcast_to(env._eve_truth, (b,) + env._eve_truth.shape).copy()
    out = model.slot_outcome_xy(qx, qy, np.full(b, 10.0), power, user, users, c, eves=eves)
    for i in range(b):
        one = model.slot_outcome_xy(float(qx[i]), float(qy[i]), 10.0, power[i], user[i], users[i], c,
                                    eves=tuple(tuple(d) for d in eves[i].tolist()))
        for key in ("bits_per_user", "one_plus_snr", "bits", "leakage_snr_max"):
            np.testing.assert_array_equal(np.asarray(one[key]), np.asarray(out[key])[i], err_msg=key)
    g = c.gamma0 / squared_distance_xy(users[..., 0] - qx[:, None], users[..., 1] - qy[:, None], c.altitude_m)
    fresh = model.realised_secrecy(qx, qy, power, user, g, eves, truth, c)
    reused = model.realised_secrecy(qx, qy, power, user, None, eves, truth, c, served=out["one_plus_snr"],
                                    eve_distance_sq=out["eve_distance_sq"])
    for key in fresh:
        np.testing.assert_array_equal(fresh[key], reused[key], err_msg=key)
    assert fresh["secrecy_rate_bps"].max() > 0.0


def test_warm_allocator_takes_any_size():
    from secure_env.envs.batched import warm_allocator

    for size in (0, 1, 10**6, 10**12):      # capped at 32 MB, at least 1 MB
        warm_allocator(size)
