"""Learning the flight from the planners: behaviour cloning, DAgger relabelling, then RL fine-tuning.

The UAV envs' velocity mode leaves only the flight to the agent (the env's per-slot rule sets power,
subcarriers and QKD photons; the safety layer keeps q_F reachable). A planner (``joint`` or
``algorithm3``) flies a tour that PPO alone rarely finds on drawn layouts: it settles on loitering
near the first user. This module turns the planners into a teacher:

1. **Demonstrations** (:func:`planner_flights`): the planner's flight (positions and velocities of
   every slot) on training layouts of a seed pool, cached on disk per (planner, env keywords,
   layout seed, code version), so a second run never replans.
2. **The expert's label at any state** (:func:`expert_action`): the velocity that brings the UAV to
   the planned position of this slot, ``(q_plan[n] - q) / tau``, as the velocity-mode action
   (divided by V_max, clipped to the unit disc). On the planned flight it *is* the planner's
   velocity; off it, it steers back to the plan. This is what DAgger needs: a label for the
   states the learner visits, not only the demonstrated ones.
3. **Cloning** (:func:`clone`): the SB3 policy's mean action regressed on the labels (MSE) over
   observations normalised with statistics fitted to the data (stored in the run's
   ``VecNormalize``), DAgger rounds rolling out the current policy on training layouts and
   relabelling with (2); the value head regressed on the demonstrations' discounted normalised
   returns, so fine-tuning starts from a critic that agrees with the policy.
4. **Fine-tuning**: ordinary PPO from that start (:func:`agents.training.train` runs it when the
   run's hyperparameters hold a ``pretrain`` mapping; see ``agents/hyperparams/pretrain.yml``).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

#: the run's env keywords that do not change a planned flight (the planner's env leaves them out, and
#: so does the cache key: a flat and a set-observation run share their flights)
_PLANNER_KEYS = ("action_mode", "safety_layer", "observation_mode", "max_users")


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of the planner pretraining (the ``pretrain`` mapping of a hyperparameter entry)."""

    planner: str = "joint"            # the teacher: a baseline of the env
    layouts: int = 80                 # training layouts demonstrated (from the pool, or seeds)
    first_seed: int = 2_000_000       # first layout seed when the run has no layout pool
    dagger_rounds: int = 2            # rollouts of the current policy relabelled by the expert
    dagger_layouts: int = 40          # layouts per DAgger round
    epochs: int = 60                  # passes over the data per fit
    batch_size: int = 256
    learning_rate: float = 1e-3
    log_std: float = -1.6             # the policy's exploration noise after cloning (std 0.2)
    value_epochs: int = 30            # passes of the value regression

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PretrainConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"pretrain: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(known))})")
        cfg = cls(**dict(raw))
        for name in ("layouts", "epochs", "batch_size", "value_epochs", "dagger_layouts"):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"pretrain.{name} must be an integer >= 1, got {v!r}")
        if isinstance(cfg.dagger_rounds, bool) or not isinstance(cfg.dagger_rounds, int) or cfg.dagger_rounds < 0:
            raise ValueError(f"pretrain.dagger_rounds must be an integer >= 0, got {cfg.dagger_rounds!r}")
        if not (isinstance(cfg.learning_rate, (int, float)) and 0 < cfg.learning_rate <= 1):
            raise ValueError(f"pretrain.learning_rate must be in (0, 1], got {cfg.learning_rate!r}")
        if not (isinstance(cfg.log_std, (int, float)) and math.isfinite(cfg.log_std)):
            raise ValueError(f"pretrain.log_std must be a finite number, got {cfg.log_std!r}")
        return cfg


# -- demonstrations ------------------------------------------------------------------------------
def _flight_key(env_id: str, env_kwargs: Mapping[str, Any], planner: str) -> str:
    from agents.benchmark.plans import code_version

    kw = {k: v for k, v in sorted(env_kwargs.items()) if k not in _PLANNER_KEYS}
    text = json.dumps([env_id, kw, planner], sort_keys=True, default=str)
    return f"{planner}-{hashlib.sha1(text.encode()).hexdigest()[:10]}-{code_version()}"


def planner_flights(env_id: str, env_kwargs: Mapping[str, Any], seeds: Iterable[int], planner: str,
                    cache: Path | None) -> dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Layout seed -> the planner's (positions, velocities), (N, 2) each, for ``reset(seed)`` of
    ``env_id`` with ``env_kwargs`` (the run's action mode is replaced by the planner's own).
    Cached as ``<cache>/<planner>-<keywords hash>-<code version>/<seed>.npz`` when ``cache``."""
    from agents.evaluation import baseline_policies, make_env

    classes = baseline_policies(env_id)
    if planner not in classes:
        raise ValueError(f"pretrain.planner: {planner!r} is not a baseline of {env_id} ({', '.join(classes)})")
    cls = classes[planner]
    folder = Path(cache) / _flight_key(env_id, env_kwargs, planner) if cache is not None else None
    kw = {k: v for k, v in env_kwargs.items() if k not in _PLANNER_KEYS}
    env = None
    out = {}
    try:
        for seed in seeds:
            path = folder / f"{int(seed)}.npz" if folder is not None else None
            if path is not None and path.exists():
                with np.load(path) as data:
                    out[int(seed)] = (data["positions"], data["velocities"])
                continue
            if env is None:
                env = make_env(env_id, **{**kw, **dict(getattr(cls, "env_overrides", {}))})
                policy = cls(env)
            obs, _ = env.reset(seed=int(seed))
            policy.predict(obs, episode_start=np.array([True]))      # plans the layout
            q, v = np.asarray(policy.positions, dtype=np.float64), np.asarray(policy.velocities, dtype=np.float64)
            out[int(seed)] = (q, v)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.stem + ".tmp.npz")
                np.savez(tmp, positions=q, velocities=v)
                tmp.replace(path)
    finally:
        if env is not None:
            env.close()
    return out


def expert_action(position: NDArray[np.float64], slot: int, plan_q: NDArray[np.float64],
                  slot_s: float, v_max_mps: float) -> NDArray[np.float32]:
    """The velocity-mode action (velocity / V_max, clipped to the unit disc) that flies from
    ``position`` to the plan's position after slot ``slot`` (``plan_q[slot]``, q[slot + 1] in the
    paper's indexing). On the plan it equals the planned velocity over V_max."""
    v = (np.asarray(plan_q[slot], dtype=np.float64) - np.asarray(position, dtype=np.float64)) / slot_s
    a = v / v_max_mps
    norm = float(np.hypot(a[0], a[1]))
    if norm > 1.0:
        a = a / norm
    return a.astype(np.float32)


@dataclass
class Dataset:
    """Observations (raw, not normalised), expert actions, and each step's reward and episode end."""

    obs: NDArray[np.float32]
    actions: NDArray[np.float32]
    rewards: NDArray[np.float64]
    dones: NDArray[np.bool_]

    @staticmethod
    def concat(parts: Sequence[Dataset]) -> Dataset:
        return Dataset(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("obs", "actions", "rewards", "dones")))

    def __len__(self) -> int:
        return len(self.obs)


def rollouts(env_id: str, env_kwargs: Mapping[str, Any], plans: Mapping[int, tuple[NDArray, NDArray]],
             policy: Any = None) -> Dataset:
    """Fly every planned layout in the run's env (velocity mode) and label every visited state with
    :func:`expert_action`. ``policy`` None flies the expert itself (the demonstrations); otherwise the
    policy's deterministic action is flown (a DAgger round) and the expert only labels."""
    from agents.evaluation import make_env

    env = make_env(env_id, **dict(env_kwargs))
    base = env.unwrapped
    if getattr(base.scenario, "action_mode", None) != "velocity":
        env.close()
        raise ValueError("planner pretraining clones velocity-mode actions: train with action_mode=velocity")
    c = base.constants
    obs_l, act_l, rew_l, done_l = [], [], [], []
    try:
        for seed, (plan_q, _) in plans.items():
            obs, info = env.reset(seed=int(seed))
            pos = np.asarray(info["position_m"], dtype=np.float64)
            slot = 0
            while True:
                label = expert_action(pos, slot, plan_q, c.slot_s, c.v_max_mps)
                action = label if policy is None else np.asarray(policy.predict(obs, deterministic=True)[0],
                                                                   dtype=np.float32).reshape(label.shape)
                obs_l.append(obs)
                act_l.append(label)
                obs, reward, terminated, truncated, info = env.step(action)
                rew_l.append(float(reward))
                done_l.append(bool(terminated or truncated))
                pos = np.asarray(info["position_m"], dtype=np.float64)
                slot += 1
                if terminated or truncated:
                    break
    finally:
        env.close()
    return Dataset(np.asarray(obs_l, dtype=np.float32), np.asarray(act_l, dtype=np.float32),
                   np.asarray(rew_l, dtype=np.float64), np.asarray(done_l, dtype=bool))


# -- cloning -------------------------------------------------------------------------------------
def _fit_normaliser(venv: Any, data: Dataset) -> None:
    """Give the run's VecNormalize observation statistics of the data and return statistics of its
    discounted returns (as VecNormalize would have accumulated them)."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    venv.obs_rms = RunningMeanStd(shape=venv.observation_space.shape)
    venv.obs_rms.update(data.obs.astype(np.float64))
    if venv.norm_reward:
        ret, rets = 0.0, []
        for r, d in zip(data.rewards, data.dones):
            ret = ret * venv.gamma + r
            rets.append(ret)
            if d:
                ret = 0.0
        venv.ret_rms = RunningMeanStd(shape=())
        venv.ret_rms.update(np.asarray(rets, dtype=np.float64))


def _returns_to_go(rewards: NDArray[np.float64], dones: NDArray[np.bool_], gamma: float) -> NDArray[np.float64]:
    out = np.zeros_like(rewards)
    acc = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if dones[i]:
            acc = 0.0
        acc = rewards[i] + gamma * acc
        out[i] = acc
    return out


def _regress(model: Any, params: list[Any], predict: Any, x_np: NDArray[np.float32], y_np: NDArray[Any],
             epochs: int, cfg: PretrainConfig, rng: np.random.Generator) -> float:
    """Adam on the mean squared error of ``predict(x batch)`` against ``y``, ``epochs`` passes in
    shuffled mini-batches over ``params``; returns the last pass's mean loss."""
    import torch as th

    policy = model.policy
    opt = th.optim.Adam(params, lr=cfg.learning_rate)
    x = th.as_tensor(x_np, dtype=th.float32, device=policy.device)
    y = th.as_tensor(y_np, dtype=th.float32, device=policy.device)
    n = len(x)
    loss_v = math.nan
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = th.as_tensor(order[i:i + cfg.batch_size], device=policy.device)
            loss = th.mean((predict(x[idx]) - y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        loss_v = total / n
    policy.set_training_mode(False)
    return loss_v


def _fit_policy(model: Any, obs: NDArray[np.float32], actions: NDArray[np.float32], cfg: PretrainConfig,
                rng: np.random.Generator) -> float:
    """The policy's mean action regressed on the expert's (normalised observations)."""
    policy = model.policy
    return _regress(model, list(policy.parameters()), lambda x: policy.get_distribution(x).distribution.mean,
                    obs, actions, cfg.epochs, cfg, rng)


def _fit_value(model: Any, obs: NDArray[np.float32], targets: NDArray[np.float64], cfg: PretrainConfig,
               rng: np.random.Generator) -> float:
    """The value head (and its own layers) regressed on discounted returns."""
    policy = model.policy
    params = list(policy.mlp_extractor.value_net.parameters()) + list(policy.value_net.parameters())
    if not policy.share_features_extractor:
        params += list(policy.vf_features_extractor.parameters())
    return _regress(model, params, lambda x: policy.predict_values(x).flatten(), obs, targets,
                    cfg.value_epochs, cfg, rng)


def pretrain(model: Any, settings: Mapping[str, Any], raw: Mapping[str, Any], cache: Path | None,
             log: Any = None) -> dict[str, Any]:
    """Clone the planner into ``model`` (an SB3 on-policy model whose env is the run's VecNormalize
    stack): demonstrations on the run's training layouts, ``dagger_rounds`` relabelled rollouts,
    then the value head. Returns a report (layouts, pairs, losses, wall time) for ``run.json``."""
    import time

    import torch as th

    from agents.training import AgentPolicy

    cfg = PretrainConfig.from_mapping(raw)
    t0 = time.perf_counter()
    env_id, env_kwargs = settings["env_id"], dict(settings["env_kwargs"])
    pool = settings.get("layout_pool")
    rng = np.random.default_rng(int(settings["seed"]))
    # the first layouts of the run's pool (or from first_seed): the same for every seed of a run
    # configuration, so their planned flights are shared through the cache
    first = int(pool[0]) if pool is not None else cfg.first_seed
    wanted = cfg.layouts + cfg.dagger_rounds * cfg.dagger_layouts
    if pool is not None and wanted > int(pool[1]):
        raise ValueError(f"pretrain: {wanted} layouts asked, the layout pool holds {int(pool[1])}")
    seeds = list(range(first, first + wanted))
    demo_seeds, extra = seeds[:cfg.layouts], seeds[cfg.layouts:]
    plans = planner_flights(env_id, env_kwargs, seeds, cfg.planner, cache)
    t_plan = time.perf_counter() - t0
    data = rollouts(env_id, env_kwargs, {s: plans[s] for s in demo_seeds})
    venv = model.get_vec_normalize_env()
    if venv is not None:
        _fit_normaliser(venv, data)

    def norm(x: NDArray[np.float32]) -> NDArray[np.float32]:
        return venv.normalize_obs(x).astype(np.float32) if venv is not None else x

    losses = [_fit_policy(model, norm(data.obs), data.actions, cfg, rng)]
    for r in range(cfg.dagger_rounds):
        chunk = extra[r * cfg.dagger_layouts:(r + 1) * cfg.dagger_layouts] or demo_seeds
        visited = rollouts(env_id, env_kwargs, {s: plans[s] for s in chunk}, AgentPolicy(model, venv))
        data = Dataset.concat([data, visited])
        losses.append(_fit_policy(model, norm(data.obs), data.actions, cfg, rng))
        if log is not None:
            log(f"pretrain: DAgger round {r + 1}/{cfg.dagger_rounds}: {len(data)} pairs, loss {losses[-1]:.4g}")
    # the critic: discounted returns of the demonstrations, in the normalised reward's units
    gamma = float(model.gamma)
    rewards = data.rewards
    if venv is not None and venv.norm_reward:
        rewards = np.clip(rewards / np.sqrt(venv.ret_rms.var + venv.epsilon), -venv.clip_reward, venv.clip_reward)
    value_loss = _fit_value(model, norm(data.obs), _returns_to_go(rewards, data.dones, gamma), cfg, rng)
    with th.no_grad():
        model.policy.log_std.fill_(cfg.log_std)
    return {"planner": cfg.planner, "layouts": len(demo_seeds), "dagger_rounds": cfg.dagger_rounds,
            "pairs": len(data), "policy_loss": losses, "value_loss": value_loss,
            "planning_s": t_plan, "wall_s": time.perf_counter() - t0}


# -- where pretraining applies -------------------------------------------------------------------
PRETRAIN_FILE = Path(__file__).with_name("hyperparams") / "pretrain.yml"


def pretrain_entry(env_id: str, algo: str, env_kwargs: Mapping[str, Any], wanted: bool | None) -> dict[str, Any] | None:
    """The pretraining settings of a run: ``agents/hyperparams/pretrain.yml``'s entry for ``env_id``
    when ``algo`` is among its ``algos``, the entry says ``default: true`` and every keyword of its
    ``when`` matches the run's env keywords (``wanted`` None), always that entry (``wanted`` True; ValueError where none exists
    for the env and algorithm), or None (``wanted`` False)."""
    import yaml

    if wanted is False:
        return None
    data = yaml.safe_load(PRETRAIN_FILE.read_text()) or {}
    entry = data.get(env_id)
    if not isinstance(entry, dict) or algo.lower() not in entry.get("algos", []):
        if wanted:
            raise ValueError(f"--pretrain: {PRETRAIN_FILE.name} has no entry for {algo} on {env_id}")
        return None
    when = entry.get("when") or {}
    if wanted is None and (not entry.get("default", False) or any(env_kwargs.get(k) != v for k, v in when.items())):
        return None
    settings = dict(entry.get("settings") or {})
    PretrainConfig.from_mapping(settings)
    return settings
