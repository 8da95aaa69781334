"""Beyond the paper: Algorithm 3 + joint refinement started from any flight (e.g. a trained agent's)."""
from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation import evaluate
from agents.refine import agent_flight_source
from baselines.cai2019.policies import JointPolicy
from baselines.cai2019.refine import RefinedTrajectoryPolicy
from baselines.quantum_uav.policies import RefinedQkdTrajectoryPolicy
from secure_env.core import uav_ofdma as model

ENV_ID = "secure_env/UavSecureOfdma-v0"
SMALL = dict(num_slots=12, num_subcarriers=8, end_xy=(300.0, 0.0), user_xy=((60.0, 80.0), (150.0, -90.0), (240.0, 70.0)))


def _straight(geo):
    return model.straight_line(geo["start_xy"], geo["end_xy"], SMALL["num_slots"], 2.0)


def _zigzag(geo):
    """An admissible flight to q_F that wanders north first: speed <= 30, velocity changes <= 10."""
    n = SMALL["num_slots"]
    vel = np.zeros((n, 2))
    vel[:, 0] = 300.0 / (n * 2.0)
    vel[: n // 2, 1] = 6.0
    vel[n // 2:, 1] = -6.0
    pos = np.asarray(geo["start_xy"]) + 2.0 * np.cumsum(vel, axis=0)
    return pos, vel


def test_from_the_straight_line_it_is_the_joint_baseline():
    class FromStraight(RefinedTrajectoryPolicy):
        def __init__(self, env):
            super().__init__(env, _straight)

    ours = evaluate(FromStraight, ENV_ID, [0], **SMALL)[0]
    joint = evaluate(JointPolicy, ENV_ID, [0], **SMALL)[0]
    assert ours["energy_efficiency_bits_per_joule"] == pytest.approx(joint["energy_efficiency_bits_per_joule"], rel=1e-9)


def test_refined_plan_is_feasible_and_not_below_its_source_flight():
    class FromZigzag(RefinedTrajectoryPolicy):
        def __init__(self, env):
            super().__init__(env, _zigzag)

    import gymnasium as gym

    env = gym.make(ENV_ID, **SMALL, action_mode="full", safety_layer=False)
    policy = FromZigzag(env)
    obs, _ = env.reset(seed=0)
    while True:
        obs, _, term, _, info = env.step(policy.predict(obs)[0])
        if term:
            break
    m = info["episode_metrics"]
    assert m["leakage_violations"] == 0 and m["power_violations"] == 0 and m["destination_reached"] == 1.0
    assert m["min_rate_shortfall_bps"] == 0.0
    assert policy.source_energy_efficiency is not None
    # never below sub-problem 1 on the source's own flight (both steps are monotone)
    assert m["energy_efficiency_bits_per_joule"] >= policy.source_energy_efficiency * (1 - 1e-6)
    assert policy.start.history[0] == pytest.approx(policy.source_energy_efficiency)


def test_agent_flight_source_flies_the_agent_in_its_own_mode_over_the_layout():
    class East:
        """A velocity-mode 'agent' that always asks for 15 m/s east (the safety layer homes it)."""

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.array([0.5, 0.0], dtype=np.float32), state

    kw = dict(SMALL, action_mode="velocity")
    source = agent_flight_source(East(), ENV_ID, kw)
    users = np.array([[10.0, 20.0], [100.0, 0.0], [200.0, -30.0]])
    q, v = source({"user_xy": users, "start_xy": np.zeros(2), "end_xy": np.array([300.0, 0.0]),
                   "eve_xy": np.array([500.0, 0.0])})
    assert q.shape == v.shape == (12, 2)
    np.testing.assert_allclose(q[-1], [300.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(q, 2.0 * np.cumsum(v, axis=0), atol=1e-9)
    assert np.all(np.hypot(*v.T) <= 30.0 * (1 + 1e-9))


def test_qkd_variant_plans_quantum_uav():
    class FromStraightQkd(RefinedQkdTrajectoryPolicy):
        def __init__(self, env):
            super().__init__(env, _straight)

    rec = evaluate(FromStraightQkd, "secure_env/QuantumUav-v0", [0], **SMALL)[0]
    assert rec["leakage_violations"] == 0 and rec["destination_reached"] == 1.0
    assert rec["secure_energy_efficiency_bits_per_joule"] > 0
