"""Hand-worked checks of the Yang et al. 2019 physics (secure_env.core).

Every expected value is worked out in the test itself, by arithmetic written out with ``math`` or by
a plain-Python loop written independently of the library, following
docs/models/qkd_noma.md and the paper's equations (3), (4), (7)-(10).
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from secure_env.core.channel import channel_gain, dbm_to_watt, path_loss_db, rayleigh_power
from secure_env.core.noma import noma_rates, secure_rates, tdma_rates
from secure_env.core.qkd import (
    basis_prob_for_error_rate,
    basis_prob_for_photons,
    error_rate,
    error_rate_general,
    photon_count,
    qkd_time,
)
from secure_env.core.qkd_noma import decode_action, encode_action, frame_reward, play_frame
from secure_env.scenarios import make_scenario

B = 1e6
NOISE_W = math.pow(10.0, -104.0 / 10.0) * 1e-3  # -104 dBm = 10^-13.4 W


# --------------------------------------------------------------------------------------------
# plain-Python reference formulas (written independently of the library)
# --------------------------------------------------------------------------------------------
def ref_error_rate(eps: float, ab: float) -> float:
    """Eq. (4): 4 |a|^2 |b|^2 eps^2 / (2 (1 - eps)^2 + eps^2)."""
    big_a = 4.0 * ab * ab
    return big_a * eps * eps / (2.0 * (1.0 - eps) ** 2 + eps * eps)


def ref_noma_rates(gains, powers, noise, bw):
    """Eq. (9) by a loop: sort users by (gain, index) ascending; user k is interfered by every user
    later in that order (the stronger ones)."""
    k_users = len(gains)
    order = sorted(range(k_users), key=lambda i: (gains[i], i))
    rates = [0.0] * k_users
    for pos, k in enumerate(order):
        interference = 0.0
        for l in order[pos + 1:]:
            interference += powers[l]
        sinr = gains[k] * powers[k] / (gains[k] * interference + noise)
        rates[k] = bw * math.log2(1.0 + sinr)
    return rates


# --------------------------------------------------------------------------------------------
# channel
# --------------------------------------------------------------------------------------------
def test_dbm_to_watt_hand_values():
    assert float(dbm_to_watt(30.0)) == pytest.approx(1.0, rel=1e-12)
    assert float(dbm_to_watt(0.0)) == pytest.approx(1e-3, rel=1e-12)
    # -104 dBm = 10^(-10.4) mW = 10^(-13.4) W = 3.98107e-14 W
    assert float(dbm_to_watt(-104.0)) == pytest.approx(3.981071705534972e-14, rel=1e-12)
    np.testing.assert_allclose(dbm_to_watt([10.0, 20.0]), [0.01, 0.1], rtol=1e-12)


def test_path_loss_db_hand_values():
    # L(d) = 17 + 30 log10(d), d in metres
    np.testing.assert_allclose(path_loss_db([1.0, 10.0, 1000.0]), [17.0, 47.0, 107.0],
                               rtol=0, atol=1e-12)
    assert float(path_loss_db(100.0)) == pytest.approx(77.0, abs=1e-12)


def test_channel_gain_hand_values():
    # d = 100 m: L = 77 dB -> 10^-7.7; fading 2 doubles it
    assert float(channel_gain(100.0, 2.0)) == pytest.approx(2.0 * 10.0 ** -7.7, rel=1e-12)
    # d = 1 m: L = 17 dB; d = 10 m: 47 dB
    np.testing.assert_allclose(channel_gain([1.0, 10.0], [1.0, 0.5]),
                               [10.0 ** -1.7, 0.5 * 10.0 ** -4.7], rtol=1e-12)


def test_rayleigh_power_statistics_and_reproducibility():
    x = rayleigh_power(np.random.default_rng(123), 100_000)
    assert x.shape == (100_000,)
    assert np.all(x >= 0.0)
    # Exp(1): mean 1, variance 1, P(X > 1) = e^-1 (tolerances are > 6 standard errors)
    assert abs(float(x.mean()) - 1.0) < 0.02
    assert abs(float(x.var()) - 1.0) < 0.05
    assert abs(float((x > 1.0).mean()) - math.exp(-1.0)) < 0.01
    # same seed -> same draws; another seed -> other draws
    y = rayleigh_power(np.random.default_rng(123), 100_000)
    np.testing.assert_array_equal(x, y)
    z = rayleigh_power(np.random.default_rng(124), 100_000)
    assert not np.array_equal(x, z)
    assert rayleigh_power(np.random.default_rng(0), (3, 4)).shape == (3, 4)


# --------------------------------------------------------------------------------------------
# QKD: error rate, photons, time
# --------------------------------------------------------------------------------------------
def test_error_rate_eq4_hand_values():
    # eps = 0.5, |a||b| = 0.5 (A = 1): 0.25 / (2 * 0.25 + 0.25) = 1/3
    assert float(error_rate(0.5, 0.5)) == pytest.approx(1.0 / 3.0, rel=1e-12)
    # eps = 0.1: 0.01 / (2 * 0.81 + 0.01) = 0.01 / 1.63
    assert float(error_rate(0.1, 0.5)) == pytest.approx(0.01 / 1.63, rel=1e-12)
    # |a||b| = 0.3: A = 4 * 0.09 = 0.36 scales the whole curve
    assert float(error_rate(0.1, 0.3)) == pytest.approx(0.36 * 0.01 / 1.63, rel=1e-12)
    assert float(error_rate(0.5, 0.3)) == pytest.approx(0.36 / 3.0, rel=1e-12)
    # e(1) = A, e(0) = 0
    for ab in (0.3, 0.4, 0.5):
        assert float(error_rate(1.0, ab)) == pytest.approx(4.0 * ab * ab, rel=1e-12)
        assert float(error_rate(0.0, ab)) == 0.0


def test_error_rate_eq4_matches_reference_and_increases():
    eps = np.linspace(1e-4, 1.0, 1001)
    got = error_rate(eps, 0.4)
    ref = [ref_error_rate(float(e), 0.4) for e in eps]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.all(np.diff(got) > 0.0)


@pytest.mark.parametrize("alpha_sq", [0.5, 0.9, 0.8])
def test_error_rate_general_with_p1_reduces_to_eq4(alpha_sq):
    beta_sq = 1.0 - alpha_sq
    ab = math.sqrt(alpha_sq * beta_sq)  # |alpha||beta|
    for eps in (0.001, 0.05, 0.1, 0.3, 0.5, 0.77, 1.0):
        got = float(error_rate_general(eps, alpha_sq, beta_sq, 1.0, 0.0, 0.0))
        assert got == pytest.approx(ref_error_rate(eps, ab), rel=1e-12), eps


def test_error_rate_general_eq3_hand_values():
    a2, b2, eps = 0.8, 0.2, 0.5
    # p2 = 1: 2 * 0.16 * [2 * 0.25 * 1 + 0 + 2 * 0.25 * 0.6 * 1] / (0.25 + 0.125) = 0.256 / 0.375
    assert float(error_rate_general(eps, a2, b2, 0.0, 1.0, 0.0)) == pytest.approx(0.256 / 0.375,
                                                                                   rel=1e-12)
    # p3 = 1 enters only through p2 + p3: the same value
    assert float(error_rate_general(eps, a2, b2, 0.0, 0.0, 1.0)) == pytest.approx(0.256 / 0.375,
                                                                                   rel=1e-12)
    # p1 = p2 = p3 = 1/3:
    # 0.32 * [2 * 0.25 * 2/3 + 0.25/3 + 2 * 0.25 * 0.6 * 2/3] / 0.375
    num = 0.32 * (2 * 0.25 * (2 / 3) + 0.25 / 3 + 2 * 0.25 * 0.6 * (2 / 3))
    assert float(error_rate_general(eps, a2, b2, 1 / 3, 1 / 3, 1 / 3)) == pytest.approx(
        num / 0.375, rel=1e-12)


def test_basis_prob_for_error_rate_hand_values():
    # A = 1, e = 1/3: ((1 - eps)/eps)^2 = (1 - 1/3) / (2/3) = 1 -> eps = 1/2
    assert float(basis_prob_for_error_rate(1.0 / 3.0, 0.5)) == pytest.approx(0.5, rel=1e-12)
    # A = 0.36, e = 0.36 * 0.01 / 1.63 (the error rate at eps = 0.1) -> 0.1
    assert float(basis_prob_for_error_rate(0.36 * 0.01 / 1.63, 0.3)) == pytest.approx(0.1, rel=1e-10)
    # err >= A -> 1; err <= 0 -> 0
    np.testing.assert_array_equal(basis_prob_for_error_rate([1.0, 1.5], 0.5), [1.0, 1.0])
    np.testing.assert_array_equal(basis_prob_for_error_rate([0.36, 0.5], 0.3), [1.0, 1.0])
    np.testing.assert_array_equal(basis_prob_for_error_rate([0.0, -0.1], 0.5), [0.0, 0.0])


@pytest.mark.parametrize("ab", [0.3, 0.45, 0.5])
def test_basis_prob_for_error_rate_inverts_error_rate_on_grid(ab):
    eps = np.linspace(0.001, 0.999, 500)
    err = np.array([ref_error_rate(float(e), ab) for e in eps])
    np.testing.assert_allclose(basis_prob_for_error_rate(err, ab), eps, rtol=1e-9)
    # and the other way round with the library's forward map
    np.testing.assert_allclose(error_rate(basis_prob_for_error_rate(err, ab), ab), err, rtol=1e-9)


def test_photon_count_hand_values():
    # ceil(8 * 10 / 0.01) = 8000; ceil(80 / 0.09) = ceil(888.9) = 889; eps = 1 -> 80
    assert float(photon_count(0.1, 10)) == 8000.0
    assert float(photon_count(0.3, 10)) == 889.0
    assert float(photon_count(1.0, 10)) == 80.0
    assert float(photon_count(0.5, 1)) == 32.0
    assert float(photon_count(0.0, 10)) == math.inf


def test_photon_count_ceiling_guard_roundtrip():
    # eps = sqrt(8m/N) is the largest eps with N photons: 8m/eps^2 may come out as N(1 + 1e-16),
    # and a plain ceil then gives N + 1. The guard must return exactly N.
    ns = np.arange(80, 20001, dtype=np.float64)
    got = photon_count(basis_prob_for_photons(ns, 10), 10)
    bad = ns[got != ns]
    assert bad.size == 0, f"photon_count(basis_prob_for_photons(N)) != N for N = {bad[:10]}"
    for n in (8, 33, 1001):  # m = 1
        assert float(photon_count(basis_prob_for_photons(n, 1), 1)) == n
    # large counts, up to the largest the action codec can ask for at m = 10 (eps = 1e-3 -> 8e7)
    for n in (10**6, 1234567, 79_999_999, 8 * 10**7, 10**9 + 7, 10**11):
        assert float(photon_count(basis_prob_for_photons(n, 10), 10)) == n, n


def test_photon_count_meets_eq7_and_is_minimal_for_random_eps():
    rnd = random.Random(2019)
    m = 10
    eps = [10.0 ** rnd.uniform(-3.0, 0.0) for _ in range(2000)]
    got = photon_count(np.array(eps), m)
    for e, n in zip(eps, got):
        x = 8.0 * m / (e * e)
        if abs(x - round(x)) < 1e-6 * x:  # too close to an integer to judge in floating point
            continue
        assert n == math.ceil(x), (e, n, x)
        assert n * e * e / 8.0 >= m and (n - 1) * e * e / 8.0 < m


def test_photon_count_meets_eq7_for_large_counts():
    """(7) N eps^2 / 8 >= m must hold for every m the scenario accepts (photons_m <= 1e9).

    eps = 2^-4 and m = 1e9 are exact in binary: 8 m / eps^2 = 2048e9 exactly, so N = 2.048e12.
    The relative ceiling guard (1 - 1e-12) pulls exact integers above ~1e12 down by N * 1e-12.
    """
    eps, m = 2.0 ** -4, 10**9
    n = float(photon_count(eps, m))
    assert n * eps * eps / 8.0 >= m, f"photon_count = {n:.0f} < {2048 * 10**9} violates (7)"
    assert n == 2048 * 10**9


def test_qkd_time_hand_value():
    # d = 300 m, c = 3e8: 1e-6 s per photon; eps = 0.5, m = 10: ceil(80 / 0.25) = 320 photons
    assert float(qkd_time(0.5, 300.0, 10, 3e8)) == pytest.approx(3.2e-4, rel=1e-12)
    # d = 600 m, eps = 0.1: 2e-6 * 8000 = 0.016 s
    np.testing.assert_allclose(qkd_time([0.5, 0.1], [300.0, 600.0], 10, 3e8), [3.2e-4, 0.016],
                               rtol=1e-12)


# --------------------------------------------------------------------------------------------
# stage 2 rates
# --------------------------------------------------------------------------------------------
def test_noma_rates_two_users_unsorted_hand_values():
    noise = 4e-14
    gains = [1e-8, 1e-10]  # user 0 is the STRONGER one (unsorted input)
    powers = [0.2, 0.8]
    # strong user 0 cancels user 1: no interference
    r0 = B * math.log2(1.0 + 1e-8 * 0.2 / noise)
    # weak user 1 sees user 0's power as interference
    r1 = B * math.log2(1.0 + 1e-10 * 0.8 / (1e-10 * 0.2 + noise))
    np.testing.assert_allclose(noma_rates(gains, powers, noise, B), [r0, r1], rtol=1e-12)
    # swapping the users swaps the rates
    np.testing.assert_allclose(noma_rates(gains[::-1], powers[::-1], noise, B), [r1, r0],
                               rtol=1e-12)


def test_noma_rates_three_users_against_loop():
    noise = NOISE_W
    cases = [
        ([3e-9, 1e-10, 2e-8], [0.3, 0.6, 0.1]),
        ([5e-7, 5e-12, 4e-10], [0.05, 0.75, 0.2]),
        ([2e-9, 2e-9, 1e-11], [0.2, 0.3, 0.5]),  # a tie: the lower index counts as weaker
    ]
    for gains, powers in cases:
        np.testing.assert_allclose(noma_rates(gains, powers, noise, B),
                                   ref_noma_rates(gains, powers, noise, B), rtol=1e-12)
    # batched: users on the last axis
    g = np.array([c[0] for c in cases])
    p = np.array([c[1] for c in cases])
    ref = [ref_noma_rates(c[0], c[1], noise, B) for c in cases]
    np.testing.assert_allclose(noma_rates(g, p, noise, B), ref, rtol=1e-12)


def test_tdma_rates_hand_values():
    noise = 4e-14
    got = tdma_rates([1e-9, 1e-10], [0.3, 0.7], 1.0, noise, B)
    ref = [0.3 * B * math.log2(1.0 + 1e-9 / noise), 0.7 * B * math.log2(1.0 + 1e-10 / noise)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_secure_rates_eq10_hand_values():
    # R_k = (t/T)(1 - e_k) r_k: 0.5 * 0.9 * 2e6 = 9e5 ; 0.5 * 0.8 * 3e6 = 1.2e6
    got = secure_rates([2e6, 3e6], [0.1, 0.2], 0.5, 1.0)
    np.testing.assert_allclose(got, [9e5, 1.2e6], rtol=1e-12)
    # T = 2: half the rates
    np.testing.assert_allclose(secure_rates([2e6, 3e6], [0.1, 0.2], 0.5, 2.0), [4.5e5, 6e5],
                               rtol=1e-12)
    # negative data time -> no data -> 0
    np.testing.assert_array_equal(secure_rates([2e6, 3e6], [0.1, 0.2], -0.1, 1.0), [0.0, 0.0])
    # batched data time (no user axis)
    got = secure_rates([[2e6, 3e6], [2e6, 3e6]], [[0.1, 0.2], [0.1, 0.2]], np.array([0.5, -3.0]), 1.0)
    np.testing.assert_allclose(got, [[9e5, 1.2e6], [0.0, 0.0]], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# action codec
# --------------------------------------------------------------------------------------------
def test_decode_action_documented_endpoints():
    eps, split = decode_action(np.array([-1.0, 1.0, 0.3, 0.3]), 2)
    np.testing.assert_allclose(eps, [1e-3, 1.0], rtol=1e-12)
    np.testing.assert_allclose(split, [0.5, 0.5], rtol=1e-12)
    # a = 0: eps = 1e-3 ** 0.5
    eps, split = decode_action(np.array([0.0, 0.4, -0.2, -0.2]), 2)
    np.testing.assert_allclose(eps, [10.0 ** -1.5, 10.0 ** (-3.0 * 0.6 / 2.0)], rtol=1e-12)
    np.testing.assert_allclose(split, [0.5, 0.5], rtol=1e-12)
    # three equal split actions -> thirds
    _, split = decode_action(np.array([0.0, 0.0, 0.0, -0.7, -0.7, -0.7]), 3)
    np.testing.assert_allclose(split, [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)
    # split actions 1 and 0: weights 1 and 10^(8 * (0 - 1) / 2) = 1e-4
    _, split = decode_action(np.array([0.0, 0.0, 1.0, 0.0]), 2)
    np.testing.assert_allclose(split, [1.0 / (1.0 + 1e-4), 1e-4 / (1.0 + 1e-4)], rtol=1e-12)
    # out-of-box values are clipped to the bounds
    eps, split = decode_action(np.array([-5.0, 7.0, 3.0, -3.0]), 2)
    np.testing.assert_allclose(eps, [1e-3, 1.0], rtol=1e-12)
    np.testing.assert_allclose(split, [1.0 / (1.0 + 1e-8), 1e-8 / (1.0 + 1e-8)], rtol=1e-12)


def test_encode_action_documented_endpoints():
    a = encode_action([1e-3, 1.0], [0.5, 0.5])
    assert a.dtype == np.float32 and a.shape == (4,)
    np.testing.assert_allclose(a, [-1.0, 1.0, 1.0, 1.0], atol=1e-7)
    # eps = 10^-1.5 -> a = 0 ; split ratio 1e-4 -> a = 1 - 2 * 4 / 8 = 0
    a = encode_action([10.0 ** -1.5, 0.1], [1.0, 1e-4])
    np.testing.assert_allclose(a, [0.0, 1.0 + 2.0 * (-1.0) / 3.0, 1.0, 0.0], atol=1e-6)


def test_action_codec_roundtrip():
    eps_grid = np.logspace(-3.0, 0.0, 61)
    splits = [
        [0.5, 0.5],
        [0.9, 0.1],
        [1e-3, 1.0 - 1e-3],
        [1.0 - 1e-7, 1e-7],
        [1.0, 1e-6, 1e-3],
        [1e-2, 0.5, 1e-5],
        [0.25, 0.25, 0.25, 0.25],
    ]
    for split in splits:
        s = np.array(split) / np.sum(split)
        k = s.size
        for i in range(0, eps_grid.size - k + 1, 3):
            eps = eps_grid[i:i + k]
            a = encode_action(eps, s)
            assert a.dtype == np.float32 and a.shape == (2 * k,)
            assert np.all(np.abs(a) <= 1.0)
            eps2, s2 = decode_action(a, k)
            # float32 action: relative step ~6e-8, times ln(10) * 1.5 (eps) or * 4 (split)
            np.testing.assert_allclose(eps2, eps, rtol=2e-6, atol=0)
            np.testing.assert_allclose(s2, s, rtol=1e-5, atol=0)
            assert float(np.sum(s2)) == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# one frame
# --------------------------------------------------------------------------------------------
def test_play_frame_hand_worked_two_user_noma():
    s = make_scenario()  # paper defaults: P_max 1 W, B 1 MHz, -104 dBm, T 1 s, c 3e8, m 10, ab 1/2
    gains = np.array([1e-9, 2e-11])  # user 0 strong
    dist = np.array([300.0, 600.0])
    eps = np.array([0.5, 0.1])
    split = np.array([0.2, 0.8])
    out = play_frame(s, gains, dist, eps, split)

    t0 = 300.0 / 3e8 * 320.0     # ceil(80 / 0.25) = 320 photons -> 3.2e-4 s
    t1 = 600.0 / 3e8 * 8000.0    # ceil(80 / 0.01) = 8000 photons -> 0.016 s
    t_data = 1.0 - (t0 + t1)     # 0.98368 s
    e0 = 0.25 / (2 * 0.25 + 0.25)        # 1/3
    e1 = 0.01 / (2 * 0.81 + 0.01)        # 0.01/1.63
    p0, p1 = 0.2, 0.8                    # W (P_max = 1 W)
    r0 = 1e6 * math.log2(1.0 + 1e-9 * p0 / NOISE_W)
    r1 = 1e6 * math.log2(1.0 + 2e-11 * p1 / (2e-11 * p0 + NOISE_W))
    sec0 = t_data / 1.0 * (1 - e0) * r0
    sec1 = t_data / 1.0 * (1 - e1) * r1

    np.testing.assert_allclose(out["qkd_time_s"], [3.2e-4, 0.016], rtol=1e-12)
    assert float(out["data_time_s"]) == pytest.approx(0.98368, rel=1e-12)
    np.testing.assert_allclose(out["error_rate"], [e0, e1], rtol=1e-12)
    np.testing.assert_allclose(out["power_w"], [p0, p1], rtol=1e-12)
    np.testing.assert_allclose(out["rate_bps"], [r0, r1], rtol=1e-12)
    np.testing.assert_allclose(out["secure_rate_bps"], [sec0, sec1], rtol=1e-12)
    assert float(out["min_secure_rate_bps"]) == pytest.approx(min(sec0, sec1), rel=1e-12)
    assert bool(out["feasible"]) is True
    assert float(out["qkd_overrun_s"]) == 0.0
    assert float(frame_reward(s, out)) == pytest.approx(min(sec0, sec1) / 1e6, rel=1e-12)


def test_play_frame_hand_worked_two_user_tdma():
    s = make_scenario(multiple_access="tdma")
    gains = np.array([1e-9, 2e-11])
    out = play_frame(s, gains, np.array([300.0, 600.0]), np.array([0.5, 0.1]), np.array([0.2, 0.8]))
    t_data = 1.0 - (3.2e-4 + 0.016)
    r0 = 0.2 * 1e6 * math.log2(1.0 + 1e-9 * 1.0 / NOISE_W)
    r1 = 0.8 * 1e6 * math.log2(1.0 + 2e-11 * 1.0 / NOISE_W)
    sec = [t_data * (1 - 1 / 3) * r0, t_data * (1 - 0.01 / 1.63) * r1]
    np.testing.assert_allclose(out["power_w"], [1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(out["rate_bps"], [r0, r1], rtol=1e-12)
    np.testing.assert_allclose(out["secure_rate_bps"], sec, rtol=1e-12)
    assert float(out["min_secure_rate_bps"]) == pytest.approx(min(sec), rel=1e-12)


def test_play_frame_infeasible():
    s = make_scenario()
    out = play_frame(s, np.array([1e-9, 2e-11]), np.array([300.0, 600.0]),
                     np.array([1e-3, 1e-3]), np.array([0.5, 0.5]))
    # ceil(80 / 1e-6) = 8e7 photons: 1e-6 s * 8e7 = 80 s and 2e-6 s * 8e7 = 160 s
    np.testing.assert_allclose(out["qkd_time_s"], [80.0, 160.0], rtol=1e-12)
    assert float(out["data_time_s"]) == pytest.approx(1.0 - 240.0, rel=1e-12)
    assert bool(out["feasible"]) is False
    np.testing.assert_array_equal(out["secure_rate_bps"], [0.0, 0.0])
    assert float(out["min_secure_rate_bps"]) == 0.0
    assert float(out["qkd_overrun_s"]) == pytest.approx(239.0, rel=1e-12)
    assert float(frame_reward(s, out)) == pytest.approx(-239.0, rel=1e-12)


def test_play_frame_feasibility_boundary():
    # c = 1 m/s and d = 1, 2 m make the times exact: 320 photons each -> t = 320 s and 640 s
    gains, dist = np.array([1e-9, 2e-11]), np.array([1.0, 2.0])
    eps, split = np.array([0.5, 0.5]), np.array([0.5, 0.5])
    # T = 960 s: no time left for data, but not overrun -> feasible, zero rates, reward 0
    s = make_scenario(light_speed_mps=1.0, frame_s=960.0)
    out = play_frame(s, gains, dist, eps, split)
    np.testing.assert_array_equal(out["qkd_time_s"], [320.0, 640.0])
    assert float(out["data_time_s"]) == 0.0
    assert bool(out["feasible"]) is True
    assert float(out["qkd_overrun_s"]) == 0.0
    np.testing.assert_array_equal(out["secure_rate_bps"], [0.0, 0.0])
    assert float(frame_reward(s, out)) == 0.0
    # T = 960.5 s: 0.5 s of data -> feasible, positive rates
    s = make_scenario(light_speed_mps=1.0, frame_s=960.5)
    out = play_frame(s, gains, dist, eps, split)
    assert bool(out["feasible"]) is True and float(out["min_secure_rate_bps"]) > 0.0
    # T = 959.5 s: overrun 0.5 s -> infeasible, reward -0.5 / 959.5
    s = make_scenario(light_speed_mps=1.0, frame_s=959.5)
    out = play_frame(s, gains, dist, eps, split)
    assert bool(out["feasible"]) is False
    assert float(out["qkd_overrun_s"]) == 0.5
    assert float(frame_reward(s, out)) == pytest.approx(-0.5 / 959.5, rel=1e-12)


def test_frame_reward_feasible_and_infeasible():
    s = make_scenario(frame_s=2.0, bandwidth_hz=2e6)
    outcome = {
        "feasible": np.array([True, False, True]),
        "min_secure_rate_bps": np.array([4e6, 0.0, 0.0]),
        "qkd_overrun_s": np.array([0.0, 0.5, 0.0]),
    }
    # 4e6 / 2e6 = 2 ; -0.5 / 2 = -0.25 ; 0 / 2e6 = 0
    np.testing.assert_allclose(frame_reward(s, outcome), [2.0, -0.25, 0.0], rtol=1e-12)
