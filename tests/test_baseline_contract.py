"""The planner contract of the baselines (issue 13, point 10).

A baseline plans from the state of the env it is bound to; ``predict`` must refuse an observation
that is not that env's current one (a foreign env, a stale slot), work on SB3 vector envs where
the planner is batched (QkdNoma-v0: one row per sub-env) and refuse a batch with a clear error
where it is not (the UAV planners). SB3's own ``evaluate_policy`` must then agree with
``agents.evaluation.evaluate``.
"""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

import secure_env  # noqa: F401
from agents.evaluation import evaluate
from baselines import BASELINES

QKD = "secure_env/QkdNoma-v0"
UAV = "secure_env/UavSecureOfdma-v0"
QUAV = "secure_env/QuantumUav-v0"
FRAMES = 4
UAV_NAMES = [(env_id, name) for env_id in (UAV, QUAV) for name in BASELINES[env_id]]
QKD_NAMES = list(BASELINES[QKD])


def qkd_env(name: str) -> gym.Env:
    return gym.make(QKD, frames_per_episode=FRAMES, **BASELINES[QKD][name].env_overrides)


def uav_env(env_id: str, name: str, **kw) -> gym.Env:
    return gym.make(env_id, **BASELINES[env_id][name].env_overrides, **kw)


# -- foreign and stale observations --------------------------------------------------------------
@pytest.mark.parametrize("name", QKD_NAMES)
def test_qkd_planner_refuses_an_observation_of_another_env(name):
    env_a, env_b = qkd_env(name), qkd_env(name)
    obs_a, _ = env_a.reset(seed=1)
    obs_b, _ = env_b.reset(seed=2)
    policy = BASELINES[QKD][name](env_a)
    policy.predict(obs_a)                                   # its own env's observation plans
    with pytest.raises(ValueError, match="not the current observation of the env it is bound to"):
        policy.predict(obs_b)
    with pytest.raises(ValueError, match="not the current observation"):
        policy.predict(obs_b[None])                         # as a batch of one, too


def test_qkd_planner_refuses_a_stale_observation():
    env = qkd_env("algorithm1")
    policy = BASELINES[QKD]["algorithm1"](env)
    obs0, _ = env.reset(seed=3)
    env.step(policy.predict(obs0)[0])
    with pytest.raises(ValueError, match="not the current observation"):
        policy.predict(obs0)                                # the frame already played


@pytest.mark.parametrize("env_id,name", UAV_NAMES)
def test_uav_planner_refuses_an_observation_of_another_layout_or_slot(env_id, name):
    env_a, env_b = uav_env(env_id, name, random_users=True), uav_env(env_id, name, random_users=True)
    obs_a, _ = env_a.reset(seed=1)
    obs_b, _ = env_b.reset(seed=2)
    assert not np.allclose(obs_a, obs_b)
    policy = BASELINES[env_id][name](env_a)
    with pytest.raises(ValueError, match="not the current observation of the env it is bound to"):
        policy.predict(obs_b)                               # another layout: refused before planning
    assert policy.stats["plans"] == 0


def test_uav_planner_refuses_the_previous_slots_observation():
    env = uav_env(UAV, "straight_line")
    policy = BASELINES[UAV]["straight_line"](env)
    obs0, _ = env.reset(seed=0)
    obs1 = env.step(policy.predict(obs0)[0])[0]
    policy.predict(obs1)
    with pytest.raises(ValueError, match="not the current observation"):
        policy.predict(obs0)


def test_observation_shape_and_float32_tolerance():
    env = qkd_env("algorithm1")
    obs, _ = env.reset(seed=0)
    policy = BASELINES[QKD]["algorithm1"](env)
    a, _ = policy.predict(obs.astype(np.float64) + 1e-7)   # float32 rounding is not a mismatch
    assert a.shape == env.action_space.shape
    with pytest.raises(ValueError, match="shape"):
        policy.predict(obs[:-1])
    with pytest.raises(ValueError, match="shape"):
        policy.predict(np.stack([obs, obs]))                # a batch of two for one env
    bad = obs.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="not the current observation"):
        policy.predict(bad)


# -- SB3's evaluate_policy ---------------------------------------------------------------------
def test_sb3_evaluate_policy_on_another_env_raises_instead_of_a_wrong_number():
    bound, other = qkd_env("algorithm1"), qkd_env("algorithm1")
    bound.reset(seed=0)
    policy = BASELINES[QKD]["algorithm1"](bound)
    with pytest.raises(ValueError, match="not the current observation"):
        evaluate_policy(policy, Monitor(other), n_eval_episodes=1)


@pytest.mark.parametrize("name", ["algorithm1", "tdma"])
def test_sb3_evaluate_policy_on_make_vec_env_of_two_matches_agents_evaluate(name):
    cls = BASELINES[QKD][name]
    venv = make_vec_env(QKD, n_envs=2, seed=100, env_kwargs=dict(frames_per_episode=FRAMES, **cls.env_overrides))
    mean, _ = evaluate_policy(cls(venv), venv, n_eval_episodes=2)
    ref = evaluate(cls, QKD, [100, 101], frames_per_episode=FRAMES)
    assert mean == pytest.approx(np.mean([r["return"] for r in ref]), rel=1e-6)


def test_sb3_evaluate_policy_on_a_uav_env_matches_agents_evaluate():
    cls = BASELINES[UAV]["straight_line"]
    env = Monitor(uav_env(UAV, "straight_line", random_users=True))
    venv = DummyVecEnv([lambda: env])
    venv.seed(5)
    mean, _ = evaluate_policy(cls(env), venv, n_eval_episodes=1)   # bound to the single env inside
    assert mean == pytest.approx(evaluate(cls, UAV, [5], random_users=True)[0]["return"], rel=1e-6)


# -- batches -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", QKD_NAMES)
def test_qkd_planners_plan_every_sub_env_of_make_vec_env(name):
    cls = BASELINES[QKD][name]
    venv = make_vec_env(QKD, n_envs=2, seed=7, env_kwargs=dict(frames_per_episode=FRAMES, **cls.env_overrides))
    policy = cls(venv)
    obs = venv.reset()
    for _ in range(FRAMES + 1):                             # through an autoreset
        action, _ = policy.predict(obs)
        assert action.shape == (2,) + venv.action_space.shape
        if name != "exh":                                   # EXH's restarts draw from one generator
            for i in range(2):                              # row i is sub-env i's own plan
                single = cls(venv.envs[i])
                np.testing.assert_allclose(action[i], single.predict(obs[i])[0], atol=1e-6)
        obs, _, _, _ = venv.step(action)


def test_qkd_planner_on_vec_normalize_and_sync_vector_env():
    venv = VecNormalize(make_vec_env(QKD, n_envs=2, env_kwargs=dict(frames_per_episode=FRAMES)))
    policy = BASELINES[QKD]["algorithm1"](venv)
    obs = venv.reset()
    for _ in range(FRAMES + 1):
        obs = venv.step(policy.predict(obs)[0])[0]
    sync = gym.vector.SyncVectorEnv([lambda: qkd_env("algorithm1") for _ in range(3)])
    policy = BASELINES[QKD]["algorithm1"](sync)
    obs, _ = sync.reset(seed=0)
    for _ in range(FRAMES + 2):                             # through NEXT_STEP autoresets
        action, _ = policy.predict(obs)
        assert action.shape == sync.action_space.shape
        obs = sync.step(action)[0]


@pytest.mark.parametrize("env_id,name", UAV_NAMES)
def test_uav_planners_refuse_make_vec_env_of_two_clearly(env_id, name):
    cls = BASELINES[env_id][name]
    venv = make_vec_env(env_id, n_envs=2, env_kwargs=cls.env_overrides)
    with pytest.raises(ValueError, match="one UAV episode at a time"):
        cls(venv)


def test_uav_planner_binds_a_vec_env_of_one():
    cls = BASELINES[UAV]["straight_line"]
    venv = make_vec_env(UAV, n_envs=1, seed=0, env_kwargs=cls.env_overrides)
    policy = cls(venv)
    obs = venv.reset()
    action, _ = policy.predict(obs)
    assert action.shape == (1,) + venv.action_space.shape
    with pytest.raises(ValueError, match="shape"):
        policy.predict(obs[0])                              # a vector env takes a batch


def test_unsupported_vector_envs_and_observation_wrappers_are_refused():
    cls = BASELINES[QKD]["algorithm1"]
    with pytest.raises(ValueError, match="VecFrameStack"):
        cls(VecFrameStack(make_vec_env(QKD, n_envs=2), 2))
    with pytest.raises(ValueError, match="SyncVectorEnv or an SB3 DummyVecEnv"):
        cls(gym.make_vec(QKD, num_envs=2, vectorization_mode="vector_entry_point"))
    with pytest.raises(ValueError, match="NormalizeObservation"):
        cls(gym.wrappers.NormalizeObservation(gym.make(QKD)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="QkdNoma-v0"):
            cls(make_vec_env("CartPole-v1", n_envs=2))
