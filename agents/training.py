"""Train an SB3 agent on an env id with atomic, resumable checkpoints: what trains.

:class:`TrainConfig` says what a run needs; :func:`prepare_run` turns it into the run's settings
(the hyperparameter file merged with the command's overrides, every value checked, the algorithm
built once on a spaces-only VecEnv) or, for a resume, reads them from ``run.json`` and refuses a
command that disagrees (:func:`_resume_settings`); :func:`train` trains or resumes and saves the
final model, returned as an :class:`AgentPolicy`. :func:`effective_timesteps` is what SB3 runs for
a budget (whole rollouts).

Elsewhere: the run folder, its ``run.json``, its identity and the log cut of a resume are
:mod:`agents.runs`; the SB3 callbacks and checkpoints :mod:`agents.callbacks`; the learning curve
:mod:`agents.plots`; scoring :mod:`agents.evaluation`. Their former names here still import
(re-exported below).
"""
from __future__ import annotations

import importlib.util
import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from agents.callbacks import checkpoint_callback, episode_log_callback, save_checkpoint
from agents.factory import (ALGOS, algo_class, coerce_numbers, complete_extractor_kwargs, load_hyperparams,
                            resolve_policy_kwargs, validate_hyperparams)
# re-exported: the run folder, its record and resume helpers live in agents.runs
from agents.runs import (BASELINE_KEYS, EPISODE_LOG, FLAGS, OPTIONAL_SETTING_KEYS, RUN_FILE, RUN_OUTPUTS,
                         SETTING_KEYS, TRAINING_OUTPUTS, _describe, _plain, atomic_write_text, check_out_dir,
                         checkpoint_timesteps, clear_run_outputs, cut_logs, default_out_dir, finished_run,
                         out_dir_conflict, read_run, run_identity, write_run)
# re-exported: the learning curve lives in agents.plots
from agents.plots import (RETURN_LABELS, LearningCurve, learning_curve, learning_curve_figure, plot_learning_curve,
                          robust_limits, running_mean)

__all__ = [
    "DEFAULT_CHECKPOINT_FREQ", "AgentPolicy", "TrainConfig", "effective_timesteps", "prepare_run", "train",
    # re-exported from agents.runs
    "BASELINE_KEYS", "EPISODE_LOG", "FLAGS", "OPTIONAL_SETTING_KEYS", "RUN_FILE", "RUN_OUTPUTS", "SETTING_KEYS",
    "TRAINING_OUTPUTS", "atomic_write_text", "check_out_dir", "checkpoint_timesteps", "clear_run_outputs",
    "cut_logs", "default_out_dir", "finished_run", "out_dir_conflict", "read_run", "run_identity", "write_run",
    # re-exported from agents.callbacks
    "checkpoint_callback", "episode_log_callback", "save_checkpoint",
    # re-exported from agents.plots
    "RETURN_LABELS", "LearningCurve", "learning_curve", "learning_curve_figure", "plot_learning_curve",
    "robust_limits", "running_mean",
]

DEFAULT_CHECKPOINT_FREQ = 10_000


@dataclass
class TrainConfig:
    """What a training run needs; ``hyperparams`` are CLI overrides on top of the YAML file.

    With ``resume=True`` the settings come from ``<out>/run.json``; every field given here must
    agree with them (``timesteps``/``n_envs`` None and empty overrides always do).
    """

    env_id: str
    algo: str = "ppo"
    timesteps: int | None = None
    seed: int = 0
    n_envs: int | None = None
    out: Path = Path("runs/default")
    resume: bool = False
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True
    torch_threads: int = 1
    vectorized: bool = False      # the native batched vector env instead of DummyVecEnv
    #: (first seed, count): every training reset draws its layout from this seed pool
    #: (:class:`agents.benchmark.layouts.LayoutPool`); None: the env's own draws
    layout_pool: tuple[int, int] | None = None
    #: planner pretraining (agents.imitation): None = as agents/hyperparams/pretrain.yml says for this
    #: env, algorithm and env keywords; False = never; True = required (an error where no entry applies)
    pretrain: bool | None = None
    #: where planner flights are cached (default: the run folder's parent's ``.planner_flights``)
    plan_cache: Path | None = None
    #: apply agents/hyperparams/variants.yml (settings for runs whose env keywords match, e.g. the
    #: set observation for drawn UAV layouts); the benchmark turns it off: its algorithms say all
    variants: bool = True


def effective_timesteps(algo: str, timesteps: int, hyperparams: Mapping[str, Any], n_envs: int) -> int:
    """The timesteps SB3 actually runs for a ``timesteps`` budget: whole rollouts of ``n_steps x
    n_envs`` for PPO and A2C, whole collection rounds of ``train_freq x n_envs`` steps (``train_freq``
    counted in steps) for SAC and TD3, rounded up (``learn`` finishes the rollout it is in)."""
    if timesteps <= 0:
        return 0
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    cls = algo_class(algo)
    params = inspect.signature(cls.__init__).parameters
    if issubclass(cls, OnPolicyAlgorithm):
        steps = hyperparams.get("n_steps", params["n_steps"].default)
    else:
        freq = hyperparams.get("train_freq", params["train_freq"].default)
        if isinstance(freq, (list, tuple)):
            freq = freq[0] if len(freq) == 2 and str(freq[1]) == "step" else 1
        steps = freq
    chunk = max(int(steps), 1) * int(n_envs)
    return -(-int(timesteps) // chunk) * chunk


# -- settings ------------------------------------------------------------------------------------
def _spaces_vec_env(observation_space: Any, action_space: Any, num_envs: int) -> Any:
    """A VecEnv of ``num_envs`` envs with these spaces that cannot step: what an algorithm's
    constructor needs, without an env process or a file."""
    from stable_baselines3.common.vec_env import VecEnv

    class SpacesVecEnv(VecEnv):
        def reset(self) -> Any:
            raise NotImplementedError

        def step_async(self, actions: Any) -> None:
            raise NotImplementedError

        def step_wait(self) -> Any:
            raise NotImplementedError

        def close(self) -> None:
            pass

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [None] * self.num_envs

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            pass

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            return [None] * self.num_envs

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * self.num_envs

    return SpacesVecEnv(num_envs, observation_space, action_space)


def _try_model(algo: str, settings: Mapping[str, Any], env: Any) -> None:
    """Build the algorithm (and VecNormalize) on a spaces-only VecEnv: any complaint of the
    constructor becomes a one-line ValueError before a file or an env process exists."""
    from stable_baselines3.common.vec_env import VecNormalize

    cls = algo_class(algo)
    hp = resolve_policy_kwargs(settings["hyperparams"])
    policy = hp.pop("policy", "MlpPolicy")
    norm = hp.pop("normalize", False)
    hp.pop("checkpoint_freq", None)
    venv = _spaces_vec_env(env.observation_space, env.action_space, int(settings["n_envs"]))
    try:
        with warnings.catch_warnings():  # SB3's advice (e.g. on batch sizes) comes once, from the real run
            warnings.simplefilter("ignore")
            if norm:
                venv = VecNormalize(venv, **(norm if isinstance(norm, dict) else {}))
            cls(policy, venv, seed=0, verbose=0, **hp)
    except Exception as err:  # noqa: BLE001 - whatever SB3 raises, the hyperparameters are at fault
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--hp: {cls.__name__} rejects these hyperparameters: {text}") from None


def prepare_run(cfg: TrainConfig) -> dict[str, Any]:
    """The run's settings (:data:`SETTING_KEYS`), checked before anything is created.

    ``timesteps`` is what SB3 will run (:func:`effective_timesteps`: the budget rounded up to
    whole rollouts). A fresh run merges the YAML file, ``cfg``'s overrides and flags, validates every
    hyperparameter (types, ranges, the algorithm's signature; then the algorithm's constructor on a
    spaces-only VecEnv) and builds the env once. A resume reads ``<out>/run.json``, requires a
    checkpoint and refuses a ``cfg`` field that disagrees with the run. Raises a one-line
    ValueError; writes nothing.
    """
    from agents.evaluation import make_env

    algo = cfg.algo.lower()
    if cfg.resume:
        return _resume_settings(cfg)
    overrides = dict(cfg.hyperparams)
    if cfg.n_envs is not None:
        overrides["n_envs"] = cfg.n_envs
    hp = load_hyperparams(algo, cfg.env_id, overrides, env_kwargs=cfg.env_kwargs if cfg.variants else None)
    run, kwargs = validate_hyperparams(algo, hp, cli_keys=overrides)
    timesteps = cfg.timesteps if cfg.timesteps is not None else run.get("n_timesteps", 50_000)
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 0:
        raise ValueError(f"timesteps must be an integer >= 0, got {timesteps!r}")
    timesteps = effective_timesteps(algo, timesteps, kwargs, int(run.get("n_envs", 8)))
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise ValueError(f"--seed must be an integer in [0, 2**32), got {cfg.seed!r}")
    env_kwargs = {**(run.get("env_kwargs") or {}), **cfg.env_kwargs}
    hyperparams = {**{k: v for k, v in run.items() if k not in ("n_envs", "n_timesteps", "env_kwargs")}, **kwargs}
    settings = _plain({"env_id": cfg.env_id, "algo": algo, "seed": cfg.seed, "timesteps": timesteps,
                       "n_envs": int(run.get("n_envs", 8)), "vectorized": bool(cfg.vectorized),
                       "hyperparams": hyperparams, "env_kwargs": env_kwargs})
    if cfg.layout_pool is not None:
        if cfg.vectorized:
            raise ValueError("a layout pool needs the Gymnasium env (DummyVecEnv): leave out --vectorized")
        first, count = (int(x) for x in cfg.layout_pool)
        if first < 0 or count < 1:
            raise ValueError(f"layout pool must be (first seed >= 0, count >= 1), got {cfg.layout_pool!r}")
        settings["layout_pool"] = [first, count]
    from agents.imitation import pretrain_entry

    spec = pretrain_entry(cfg.env_id, algo, env_kwargs, cfg.pretrain)
    if spec is not None:
        settings["pretrain"] = _plain(spec)
    env = make_env(cfg.env_id, **env_kwargs)
    try:
        # a named set encoder gets its layout keywords from the env (agents.encoders)
        settings["hyperparams"] = _plain(complete_extractor_kwargs(
            settings["hyperparams"], getattr(env.unwrapped, "observation_layout", None)))
        _try_model(algo, settings, env)
    finally:
        env.close()
    return settings


def _agrees(given: Any, saved: Any) -> bool:
    """A resume flag agrees with the run when it equals the run's value (mappings: every given
    item equals the run's, since overrides merge into the file's mapping one level deep)."""
    given = _plain(given)
    if isinstance(given, dict) and isinstance(saved, dict):
        return all(k in saved and saved[k] == v for k, v in given.items())
    return given == saved


def _resume_settings(cfg: TrainConfig) -> dict[str, Any]:
    out = Path(cfg.out)
    record = read_run(out)
    if record is None:
        raise ValueError(f"--resume: {out} holds no run ({out / RUN_FILE} is missing)")
    if record.get("kind", "train") != "train":
        raise ValueError(f"--resume: {out} holds {_describe(record)}: nothing to resume")
    missing = [k for k in SETTING_KEYS if k not in record]
    if missing:
        raise ValueError(f"--resume: {out / RUN_FILE} lacks {missing} (written by an older version): "
                         f"start the run again with --overwrite")
    if not (out / "checkpoints" / "model.zip").exists():
        raise ValueError(f"--resume: {out} has no checkpoint yet (checkpoints/model.zip); "
                         f"start it again without --resume")
    settings = {k: record[k] for k in SETTING_KEYS}
    settings.update({k: record[k] for k in OPTIONAL_SETTING_KEYS if record.get(k) is not None})
    given = {"env_id": cfg.env_id, "algo": cfg.algo.lower(), "seed": cfg.seed, "vectorized": bool(cfg.vectorized)}
    if cfg.timesteps is not None:
        given["timesteps"] = cfg.timesteps
        if isinstance(cfg.timesteps, int) and cfg.timesteps >= 0 and record.get("algo") in ALGOS:
            given["timesteps"] = effective_timesteps(record["algo"], cfg.timesteps, record["hyperparams"] or {},
                                                     int(record["n_envs"]))
    if cfg.n_envs is not None:
        given["n_envs"] = cfg.n_envs
    for key, value in given.items():
        if not _agrees(value, settings[key]):
            raise ValueError(f"--resume: {FLAGS[key]} {value} conflicts with the run in {out} "
                             f"({key} {settings[key]}); leave it out, a resume keeps the run's settings")
    for key, value in coerce_numbers(dict(cfg.hyperparams)).items():
        saved = {"n_envs": settings["n_envs"], "n_timesteps": settings["timesteps"],
                 "env_kwargs": settings["env_kwargs"]}.get(key, settings["hyperparams"].get(key))
        if not _agrees(value, saved):
            raise ValueError(f"--resume: --hp {key}={value} conflicts with the run in {out} ({key} {saved}); "
                             f"leave it out, a resume keeps the run's settings")
    for key, value in cfg.env_kwargs.items():
        saved = settings["env_kwargs"].get(key)
        if key not in settings["env_kwargs"] or not _agrees(value, saved):
            raise ValueError(f"--resume: --env-kw {key}={value} conflicts with the run in {out} "
                             f"({key} {saved if key in settings['env_kwargs'] else 'not set'}); "
                             f"leave it out, a resume keeps the run's settings")
    validate_hyperparams(settings["algo"], {**settings["hyperparams"], "n_envs": settings["n_envs"]})
    return settings


# -- training ------------------------------------------------------------------------------------
class AgentPolicy:
    """A trained model plus its observation normalisation, behind SB3's ``predict``."""

    def __init__(self, model: Any, vecnormalize: Any = None) -> None:
        self.model = model
        self.vecnormalize = vecnormalize

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = observation
        if self.vecnormalize is not None:
            obs = self.vecnormalize.normalize_obs(np.asarray(observation))
        return self.model.predict(obs, state=state, episode_start=episode_start,
                                  deterministic=deterministic)


def _make_venv(settings: Mapping[str, Any], out: Path, resume_vn: Path | None) -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    (out / "monitor").mkdir(parents=True, exist_ok=True)
    n_envs = int(settings["n_envs"])
    env_kwargs = dict(settings["env_kwargs"])
    if settings["vectorized"]:
        from agents.vec_adapter import make_native_vec_env

        venv = make_native_vec_env(settings["env_id"], n_envs, settings["seed"], env_kwargs, out / "monitor")
    else:
        pool = settings.get("layout_pool")
        wrapper, wrapper_kwargs = None, None
        if pool is not None:
            from agents.benchmark.layouts import LayoutPool

            wrapper, wrapper_kwargs = LayoutPool, {"first": int(pool[0]), "count": int(pool[1])}
        venv = make_vec_env(settings["env_id"], n_envs=n_envs, seed=settings["seed"], env_kwargs=env_kwargs,
                            monitor_dir=str(out / "monitor"),
                            monitor_kwargs={"override_existing": resume_vn is None},
                            wrapper_class=wrapper, wrapper_kwargs=wrapper_kwargs)
    norm = settings["hyperparams"].get("normalize", False)
    if norm:
        if resume_vn is not None and resume_vn.exists():
            venv = VecNormalize.load(str(resume_vn), venv)
        else:
            venv = VecNormalize(venv, **(norm if isinstance(norm, dict) else {}))
    return venv


def train(cfg: TrainConfig, settings: Mapping[str, Any] | None = None,
          callbacks: Sequence[Any] = ()) -> tuple[AgentPolicy, dict[str, Any]]:
    """Train (or resume) and save the final model; return the policy and the run record.

    ``settings`` are :func:`prepare_run`'s (computed here when not given); ``callbacks`` are SB3
    callbacks run after the run's own (episode log, checkpoints). A fresh run clears
    the training outputs of the folder first (a rerun never mixes with an older one) and writes
    ``run.json`` before training; a resume cuts the episode logs back to its checkpoint. The
    record (``run.json``) gets ``status``, ``timesteps_done`` and ``resumed_from`` at the end.
    """
    import torch

    from agents.evaluation import primary_metric

    settings = dict(settings) if settings is not None else prepare_run(cfg)
    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    ckpt = out / "checkpoints"
    cls = algo_class(settings["algo"])
    hp = settings["hyperparams"]
    kwargs = resolve_policy_kwargs({k: v for k, v in hp.items() if k not in ("policy", "normalize", "checkpoint_freq")})
    freq = int(hp.get("checkpoint_freq", DEFAULT_CHECKPOINT_FREQ))
    if cfg.resume:
        record = read_run(out) or {}
        resumed_from = checkpoint_timesteps(ckpt / "model.zip")
        cut_logs(out, resumed_from)
    else:
        clear_run_outputs(out, TRAINING_OUTPUTS)
        record, resumed_from = {}, None
    out.mkdir(parents=True, exist_ok=True)
    record.update({"kind": "train", **settings, "status": "running", "resumed_from": resumed_from,
                   "timesteps_done": record.get("timesteps_done")})
    write_run(out, record)
    venv = _make_venv(settings, out, ckpt / "vecnormalize.pkl" if cfg.resume else None)
    tb = str(out / "tb") if importlib.util.find_spec("tensorboard") else None
    if cfg.resume:
        model = cls.load(ckpt / "model.zip", env=venv, tensorboard_log=tb)
    else:
        model = cls(hp.get("policy", "MlpPolicy"), venv, seed=settings["seed"], tensorboard_log=tb,
                    verbose=0, **kwargs)
        if settings.get("pretrain"):
            from agents.imitation import pretrain

            cache = Path(cfg.plan_cache) if cfg.plan_cache is not None else out.parent / ".planner_flights"
            record["pretrain_report"] = pretrain(model, settings, settings["pretrain"], cache,
                                                 log=print if cfg.progress_bar else None)
            write_run(out, record)
            save_checkpoint(model, ckpt)      # a kill from here on resumes after the pretraining
    if tb is None:
        # without tensorboard SB3's default logger would make an empty /tmp/SB3-<date> folder per
        # run; a logger with no outputs keeps everything under the run folder
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[]))
    remaining = max(int(settings["timesteps"]) - model.num_timesteps, 0)
    if remaining > 0:
        from stable_baselines3.common.callbacks import CallbackList

        progress = cfg.progress_bar and importlib.util.find_spec("tqdm") is not None \
            and importlib.util.find_spec("rich") is not None
        callbacks = CallbackList([episode_log_callback(out / "monitor" / EPISODE_LOG,
                                                       primary_metric(settings["env_id"])),
                                  checkpoint_callback(ckpt, freq), *callbacks])
        model.learn(remaining, callback=callbacks, reset_num_timesteps=not cfg.resume,
                    progress_bar=progress, tb_log_name=settings["algo"])
    save_checkpoint(model, ckpt)
    save_checkpoint(model, out)  # the final model.zip (+ vecnormalize.pkl) of the run
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.training = False
        vn.norm_reward = False
    record.update({"status": "done", "timesteps_done": int(model.num_timesteps)})
    write_run(out, record)
    venv.close()
    return AgentPolicy(model, vn), record
