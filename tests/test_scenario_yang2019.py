"""Scenario of Yang et al. 2019: paper defaults, validation and overrides (directly and via gym.make)."""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import secure_env  # noqa: F401  (registers secure_env/QkdNoma-v0)
from secure_env.scenarios import PRESETS, QkdNomaScenario, make_scenario

ENV_ID = "secure_env/QkdNoma-v0"

# (keyword, invalid value)
INVALID = [
    ("num_users", 0),
    ("num_users", 2.5),
    ("num_users", True),
    ("num_users", -3),
    ("num_users", "two"), ("num_users", "2.5"),
    ("alpha_beta", 0),
    ("alpha_beta", 0.0),
    ("alpha_beta", 0.6),
    ("alpha_beta", -0.1),
    ("bandwidth_hz", -1),
    ("bandwidth_hz", 0),
    ("p_max_dbm", float("nan")),
    ("frame_s", float("inf")),
    ("frame_s", 0.0),
    ("photons_m", 0),
    ("photons_m", 1.5),
    ("frames_per_episode", 0),
    ("multiple_access", "cdma"),
    ("multiple_access", 1),
    ("light_speed_mps", 0.0),
    ("area_m", -5.0),
]


def test_defaults_are_the_papers():
    s = QkdNomaScenario()
    assert s.num_users == 2
    assert s.p_max_dbm == 30.0
    assert s.bandwidth_hz == 1e6
    assert s.noise_dbm == -104.0
    assert s.frame_s == 1.0
    assert s.light_speed_mps == 3e8
    assert s.photons_m == 10
    assert s.alpha_beta == 0.5
    assert s.area_m == 1000.0
    assert s.multiple_access == "noma"
    assert s.min_distance_m == 1.0
    # make_scenario() with no argument is the same preset
    assert make_scenario() == s
    assert make_scenario("yang2019") == s


def test_power_properties():
    s = QkdNomaScenario()
    assert s.p_max_w == pytest.approx(1.0, rel=1e-12)                  # 30 dBm = 1 W
    assert s.noise_w == pytest.approx(10.0 ** -13.4, rel=1e-12)        # -104 dBm
    assert isinstance(s.p_max_w, float) and isinstance(s.noise_w, float)
    s2 = QkdNomaScenario(p_max_dbm=20.0, noise_dbm=-90.0)
    assert s2.p_max_w == pytest.approx(0.1, rel=1e-12)
    assert s2.noise_w == pytest.approx(1e-12, rel=1e-12)
    assert s.error_constant == pytest.approx(1.0, rel=1e-12)
    assert QkdNomaScenario(alpha_beta=0.3).error_constant == pytest.approx(0.36, rel=1e-12)


def test_scenario_is_frozen():
    s = QkdNomaScenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.num_users = 3  # type: ignore[misc]


@pytest.mark.parametrize("name,value", INVALID)
def test_invalid_value_raises_naming_field(name, value):
    with pytest.raises(ValueError, match=name):
        QkdNomaScenario(**{name: value})
    with pytest.raises(ValueError, match=name):
        make_scenario(**{name: value})


def test_integer_fields_are_normalised():
    s = make_scenario(num_users=3.0, photons_m=20.0)
    assert s.num_users == 3 and isinstance(s.num_users, int)
    assert s.photons_m == 20 and isinstance(s.photons_m, int)
    s = make_scenario(num_users=np.int64(4))
    assert s.num_users == 4 and type(s.num_users) is int


def test_unknown_keyword_lists_allowed_names():
    with pytest.raises(ValueError) as exc:
        make_scenario(foo=1)
    msg = str(exc.value)
    assert "foo" in msg
    for allowed in ("num_users", "alpha_beta", "bandwidth_hz", "p_max_dbm", "photons_m",
                    "frames_per_episode", "multiple_access"):
        assert allowed in msg


def test_min_distance_beyond_half_diagonal_rejected():
    # half-diagonal of a 10 m square: 10 * sqrt(0.5) = 7.07 m
    with pytest.raises(ValueError, match="min_distance_m"):
        make_scenario(area_m=10.0, min_distance_m=7.1)
    s = make_scenario(area_m=10.0, min_distance_m=7.0)
    assert s.min_distance_m == 7.0


def test_make_scenario_preset_dict_instance_and_unknown_preset():
    assert "yang2019" in PRESETS
    s = make_scenario("yang2019", num_users=3, alpha_beta=0.3)
    assert (s.num_users, s.alpha_beta) == (3, 0.3)
    assert s.bandwidth_hz == 1e6  # untouched fields keep the paper's values
    d = make_scenario({"num_users": 4, "multiple_access": "tdma"})
    assert (d.num_users, d.multiple_access) == (4, "tdma")
    # dict plus keyword: the keyword wins
    d2 = make_scenario({"num_users": 4}, num_users=5)
    assert d2.num_users == 5
    # an instance as base
    base = QkdNomaScenario(photons_m=30)
    assert make_scenario(base) is base
    assert make_scenario(base, num_users=3).photons_m == 30
    # invalid values inside a dict are caught too
    with pytest.raises(ValueError, match="alpha_beta"):
        make_scenario({"alpha_beta": 0.7})
    with pytest.raises(ValueError, match="nonexistent") as exc:
        make_scenario("nonexistent")
    assert "yang2019" in str(exc.value)


# --------------------------------------------------------------------------------------------
# through gym.make
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,value", INVALID)
def test_gym_make_invalid_value_raises_naming_field(name, value):
    with pytest.raises(ValueError, match=name):
        gym.make(ENV_ID, **{name: value})


def test_gym_make_unknown_keyword():
    with pytest.raises(ValueError) as exc:
        gym.make(ENV_ID, foo=1)
    assert "foo" in str(exc.value) and "num_users" in str(exc.value)


def test_gym_make_invalid_preset():
    with pytest.raises(ValueError, match="nonexistent"):
        gym.make(ENV_ID, scenario="nonexistent")


def test_gym_make_valid_overrides_take_effect():
    env = gym.make(ENV_ID, num_users=3)
    try:
        assert env.action_space.shape == (6,)
        assert env.observation_space.shape == (6,)
        assert env.unwrapped.scenario.num_users == 3
        obs, info = env.reset(seed=0)
        assert obs.shape == (6,)
        assert info["channel_gain"].shape == (3,)
    finally:
        env.close()

    env = gym.make(ENV_ID, alpha_beta=0.3, photons_m=20, frame_s=2.0, bandwidth_hz=2e6,
                   p_max_dbm=20.0, multiple_access="tdma", frames_per_episode=3)
    try:
        s = env.unwrapped.scenario
        assert (s.alpha_beta, s.photons_m, s.frame_s, s.bandwidth_hz, s.p_max_dbm,
                s.multiple_access, s.frames_per_episode) == (0.3, 20, 2.0, 2e6, 20.0, "tdma", 3)
        env.reset(seed=1)
        # eps = 1 (a = +1): error rate A = 4 * 0.09 = 0.36, photons ceil(8 * 20 / 1) = 160
        _, _, _, _, info = env.step(np.array([1.0, 1.0, 0.0, 0.0], dtype=np.float32))
        np.testing.assert_allclose(info["error_rate"], [0.36, 0.36], rtol=1e-12)
        d = np.asarray(info["distance_m"])
        np.testing.assert_allclose(info["qkd_time_s"], d / 3e8 * 160.0, rtol=1e-12)
        np.testing.assert_allclose(info["power_w"], [0.1, 0.1], rtol=1e-12)  # TDMA: each at P_max
        truncated = [env.step(np.zeros(4, dtype=np.float32))[3] for _ in range(2)]
        assert truncated == [False, True]
    finally:
        env.close()


def test_gym_make_scenario_argument():
    env = gym.make(ENV_ID, scenario={"num_users": 1})
    try:
        assert env.action_space.shape == (2,)
    finally:
        env.close()
    env = gym.make(ENV_ID, scenario=QkdNomaScenario(num_users=4), alpha_beta=0.4)
    try:
        assert env.action_space.shape == (8,)
        assert env.unwrapped.scenario.alpha_beta == 0.4
    finally:
        env.close()


def test_validation_message_mentions_range():
    with pytest.raises(ValueError) as exc:
        make_scenario(alpha_beta=0.6)
    msg = str(exc.value)
    assert "0.6" in msg and "0.5" in msg
