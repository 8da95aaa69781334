"""Train an SB3 agent on an env id with atomic, resumable checkpoints, then score it.

Everything a run writes lives under its run directory (one run per directory):

    <out>/run.json                      the run's settings, written when it starts (so a killed run
                                        can be resumed) and updated when training ends
    <out>/checkpoints/model.zip         latest checkpoint (written to a temp file, then renamed)
    <out>/checkpoints/vecnormalize.pkl  its VecNormalize statistics (when normalisation is on)
    <out>/monitor/episodes.csv          one row per training episode: global timestep at its end,
                                        env index, return, length, the env's primary metric
    <out>/monitor/*.monitor.csv         SB3's per-env Monitor logs (appended across resumes)
    <out>/tb/                           TensorBoard logs (only when tensorboard is installed)
    <out>/model.zip, vecnormalize.pkl   the final model
    <out>/scores.json, scores.md        the scoreboard; learning_curve.png, trajectories.png

A run killed at any moment resumes with ``resume=True`` from the last checkpoint, with the settings
of its ``run.json``, and loses at most the timesteps since then: the episode logs are cut back to
the checkpoint first, so the learning curve never holds steps the model has forgotten.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
import os
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from agents.factory import (ALGOS, algo_class, coerce_numbers, complete_extractor_kwargs, load_hyperparams,
                            resolve_policy_kwargs, validate_hyperparams)

DEFAULT_CHECKPOINT_FREQ = 10_000
RUN_FILE = "run.json"
EPISODE_LOG = "episodes.csv"
#: the settings that make a training run; stored in run.json, taken from there by a resume
SETTING_KEYS = ("env_id", "algo", "seed", "timesteps", "n_envs", "vectorized", "hyperparams", "env_kwargs")
#: settings a run has only when they are set (older run records lack them and stay the same run)
OPTIONAL_SETTING_KEYS = ("layout_pool", "pretrain")
#: what identifies a baselines-only scoreboard
BASELINE_KEYS = ("env_id", "env_kwargs")
#: every file or folder a run writes in its directory (what ``clear_run_outputs`` removes)
RUN_OUTPUTS = (RUN_FILE, "checkpoints", "monitor", "tb", "model.zip", "vecnormalize.pkl", "scores.json",
               "scores.md", "learning_curve.png", "trajectories.png")
#: the training outputs a fresh start removes (a rerun of the same settings never mixes with the old one)
TRAINING_OUTPUTS = ("checkpoints", "monitor", "tb", "model.zip", "vecnormalize.pkl", "learning_curve.png")
#: the CLI flag of each setting (errors name the flag)
FLAGS = {"env_id": "--env", "algo": "--algo", "seed": "--seed", "timesteps": "--timesteps", "n_envs": "--n-envs",
         "vectorized": "--vectorized", "hyperparams": "--hp", "env_kwargs": "--env-kw"}
#: what the undiscounted episode return is, per env id (learning-curve axis label)
RETURN_LABELS = {
    "secure_env/UavSecureOfdma-v0": "episode return\n= EE (kbit/J) minus penalties",
    "secure_env/QuantumUav-v0": "episode return\n= secure EE (kbit/J) minus penalties",
    "secure_env/QkdNoma-v0": "episode return = sum over frames\nof min secure rate / B (bit/s/Hz)",
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def default_out_dir(env_id: str, algo: str, seed: int, baselines_only: bool = False,
                    overrides: Mapping[str, Any] | None = None) -> Path:
    """``runs/<env name>/<algo>_seed<seed>``, or ``runs/<env name>/baselines`` for a baselines-only
    run, followed by the command's setting overrides (``overrides``: e.g. ``{"timesteps": 500000,
    "random_users": True}`` -> ``_random_users=true_timesteps=500000``), so commands with
    different settings never share a default folder (a name longer than 120 characters is cut and
    ends in a hash of the whole)."""
    env = env_id.split("/")[-1]
    name = "baselines" if baselines_only else f"{algo.lower()}_seed{seed}"
    parts = []
    for key, value in sorted((overrides or {}).items()):
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={text}")
    if parts:
        suffix = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", re.sub(r"[\[\]{}\"' ]", "", "_".join(parts))).strip("-")
        name = f"{name}_{suffix}"
        if len(name) > 120:
            name = f"{name[:110]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return Path("runs") / env / name


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """ValueError (one line, naming ``flag``) when ``out`` cannot be a run folder: it is a file, a
    folder above it is a file, or the nearest existing folder cannot be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder: choose another {flag}")
    existing = out
    while not existing.exists():
        if existing.is_symlink():
            raise ValueError(f"{flag} {out}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {out}: {existing} is a file, so no folder can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {out}: {existing} is not writable (permission denied)")


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


def finished_run(out: Path, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """``out``'s run record when it holds this very run (:func:`run_identity` equal to
    ``identity``) and that run has finished (status ``done``); else None."""
    record = read_run(out)
    if record is None or record.get("status") != "done" or run_identity(record) != _plain(dict(identity)):
        return None
    return record


# -- run records ---------------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    """``x`` as JSON would give it back (tuples -> lists), for comparisons with run.json."""
    return json.loads(json.dumps(x, default=str))


def read_run(out: Path) -> dict[str, Any] | None:
    """``<out>/run.json`` (None when absent); ValueError when it is not a JSON object."""
    path = Path(out) / RUN_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"{path} is not readable JSON: move it away or use --overwrite") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a run record: move it away or use --overwrite")
    return record


def write_run(out: Path, record: Mapping[str, Any]) -> Path:
    """Write ``<out>/run.json`` atomically."""
    path = Path(out) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(_plain(dict(record)), indent=2))
    return path


def run_identity(record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run record that makes it this run: its kind and settings."""
    kind = record.get("kind", "train")
    keys = SETTING_KEYS if kind == "train" else BASELINE_KEYS
    optional = {k: record[k] for k in OPTIONAL_SETTING_KEYS if kind == "train" and record.get(k) is not None}
    return _plain({"kind": kind, **{k: record.get(k) for k in keys}, **optional})


def _describe(record: Mapping[str, Any]) -> str:
    if record.get("kind", "train") == "baselines":
        return f"the baselines' scoreboard of {record.get('env_id')}"
    return (f"a {record.get('algo')} run on {record.get('env_id')} (seed {record.get('seed')}, "
            f"{record.get('timesteps')} timesteps)")


def checkpoint_timesteps(ckpt: Path) -> int:
    """``num_timesteps`` of an SB3 checkpoint, read from the zip's ``data`` entry (no torch load)."""
    try:
        with zipfile.ZipFile(ckpt) as z:
            return int(json.loads(z.read("data"))["num_timesteps"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        raise ValueError(f"{ckpt} is not a readable checkpoint") from None


def out_dir_conflict(out: Path, identity: Mapping[str, Any]) -> str | None:
    """Why ``out`` cannot take a fresh run with this ``identity`` (see :func:`run_identity`);
    None when it can (an empty folder, or a finished run of the same settings, which train.py
    shows rather than redoes: :func:`finished_run`)."""
    out = Path(out)
    present = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if not present:
        return None
    hint = "choose another --out, or --overwrite to replace it"
    record = read_run(out)
    if record is None:
        what = "files of another run"
        if (out / "scores.json").exists():
            try:
                what = f"the scores of {json.loads((out / 'scores.json').read_text()).get('env_id')}"
            except (OSError, ValueError, AttributeError):
                pass
        return f"{out} holds {what} ({', '.join(present)}) and no {RUN_FILE}: {hint}"
    mine = _plain(dict(identity))
    theirs = run_identity(record)
    if theirs != mine:
        diff = [f"{k} {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in mine
                if theirs.get(k) != mine.get(k) and k not in ("hyperparams", "env_kwargs")]
        diff += [f"{k} differ" for k in ("hyperparams", "env_kwargs") if k in mine and theirs.get(k) != mine.get(k)]
        return f"{out} holds {_describe(record)}, a different run ({'; '.join(diff[:3])}): {hint}"
    ckpt = out / "checkpoints" / "model.zip"
    if record.get("kind", "train") == "train" and record.get("status") != "done" and ckpt.exists():
        return (f"{out} holds this run unfinished, with a checkpoint at {checkpoint_timesteps(ckpt)} timesteps: "
                f"--resume to continue it, or --overwrite to start over")
    return None


def clear_run_outputs(out: Path, names: tuple[str, ...] = RUN_OUTPUTS) -> None:
    """Remove the files and folders a run writes (only those names) from ``out``."""
    for name in names:
        path = Path(out) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


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


def _checkpoint_callback(ckpt_dir: Path, freq: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        """Save model (and VecNormalize) every ``freq`` timesteps via temp file + rename."""

        def __init__(self) -> None:
            super().__init__()
            self.last = 0

        def _on_training_start(self) -> None:
            self.last = self.num_timesteps

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= freq:
                self.last = self.num_timesteps
                save_checkpoint(self.model, ckpt_dir)
            return True

    return AtomicCheckpoint()


def _episode_log_callback(path: Path, metric: str) -> Any:
    """Append one row per finished training episode to ``path``: the global timestep at its end
    (the model's ``num_timesteps``, so rows are in step order across resumes), the env index, the
    Monitor's return and length, and ``metric`` from the episode's ``info["episode_metrics"]``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.file: Any = None

        def _on_training_start(self) -> None:
            new = not path.exists() or path.stat().st_size == 0
            self.file = path.open("a")
            if new:
                self.file.write(f"timesteps,env,return,length,{metric}\n")
                self.file.flush()

        def _on_step(self) -> bool:
            dones = self.locals.get("dones")
            infos = self.locals.get("infos")
            if dones is None or infos is None:
                return True
            for i in np.flatnonzero(dones):
                episode = infos[i].get("episode")
                if episode is None:
                    continue
                value = infos[i].get("episode_metrics", {}).get(metric, math.nan)
                self.file.write(f"{self.num_timesteps},{i},{float(episode['r'])!r},{int(episode['l'])},"
                                f"{float(value)!r}\n")
            self.file.flush()  # before the checkpoint callback runs: the log never lags a checkpoint
            return True

        def _on_training_end(self) -> None:
            if self.file is not None:
                self.file.close()
                self.file = None

    return EpisodeLog()


def save_checkpoint(model: Any, ckpt_dir: Path) -> None:
    """Atomically save the model, then its VecNormalize statistics, into ``ckpt_dir``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / "model.tmp.zip"
    model.save(tmp)
    os.replace(tmp, ckpt_dir / "model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        tmp_vn = ckpt_dir / "vecnormalize.tmp.pkl"
        vn.save(str(tmp_vn))
        os.replace(tmp_vn, ckpt_dir / "vecnormalize.pkl")


def _data_rows(lines: list[str]) -> tuple[list[str], list[str]]:
    """(header lines, complete data rows) of a Monitor CSV (``#`` comment, then ``r,l,t``)."""
    head = [ln for ln in lines[:2] if ln.startswith("#") or ln.startswith("r,")]
    rows = [ln for ln in lines[len(head):] if ln.strip() and ln.count(",") >= 2]
    return head, rows


def cut_logs(out: Path, timesteps: int) -> int:
    """Drop every logged episode that ended after ``timesteps`` (the checkpoint a resume starts
    from) from ``monitor/episodes.csv`` and from SB3's Monitor CSVs; returns how many were dropped.

    The Monitor files hold the same episodes in the same order (``<rank>.monitor.csv`` per env for
    DummyVecEnv, ``native-<k>.monitor.csv`` in completion order for the native vector env), so
    each keeps as many rows as the kept episodes of its env.
    """
    mon = Path(out) / "monitor"
    log = mon / EPISODE_LOG
    if not log.exists():
        return 0
    lines = log.read_text().splitlines()
    header, rows = lines[:1], []
    per_env: dict[int, int] = {}
    dropped = 0
    for line in lines[1:]:
        parts = line.split(",")
        try:
            step, env = int(parts[0]), int(parts[1])
            float(parts[4])
        except (IndexError, ValueError):
            continue  # a row cut short by the kill
        if step <= timesteps:
            rows.append(line)
            per_env[env] = per_env.get(env, 0) + 1
        else:
            dropped += 1
    atomic_write_text(log, "\n".join(header + rows) + "\n")
    for path in mon.glob("*.monitor.csv"):
        rank = path.name.split(".")[0]
        if rank.isdigit():
            head, data = _data_rows(path.read_text().splitlines())
            atomic_write_text(path, "\n".join(head + data[:per_env.get(int(rank), 0)]) + "\n")
    budget = len(rows)
    for path in sorted(mon.glob("native-*.monitor.csv"), key=lambda p: int(p.name.split(".")[0].split("-")[1])):
        head, data = _data_rows(path.read_text().splitlines())
        keep = data[:budget]
        budget -= len(keep)
        atomic_write_text(path, "\n".join(head + keep) + "\n")
    return dropped


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
    remaining = max(int(settings["timesteps"]) - model.num_timesteps, 0)
    if remaining > 0:
        from stable_baselines3.common.callbacks import CallbackList

        progress = cfg.progress_bar and importlib.util.find_spec("tqdm") is not None \
            and importlib.util.find_spec("rich") is not None
        callbacks = CallbackList([_episode_log_callback(out / "monitor" / EPISODE_LOG,
                                                        primary_metric(settings["env_id"])),
                                  _checkpoint_callback(ckpt, freq), *callbacks])
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


# -- learning curve ------------------------------------------------------------------------------
class LearningCurve(NamedTuple):
    """Training episodes in step order: the global timestep at each episode's end, its return and
    its primary metric (``metric``, NaN where the env did not report it)."""

    timesteps: np.ndarray
    returns: np.ndarray
    metric_values: np.ndarray
    metric: str


def learning_curve(out: Path) -> LearningCurve:
    """The run's training episodes from ``monitor/episodes.csv``, sorted by timestep (stable)."""
    path = Path(out) / "monitor" / EPISODE_LOG
    rows: list[tuple[float, float, float]] = []
    metric = "metric"
    if path.exists():
        lines = path.read_text().splitlines()
        if lines:
            metric = lines[0].split(",")[-1]
        for line in lines[1:]:
            parts = line.split(",")
            try:
                rows.append((float(parts[0]), float(parts[2]), float(parts[4])))
            except (IndexError, ValueError):
                continue
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    return LearningCurve(arr[:, 0], arr[:, 1], arr[:, 2], metric)


def robust_limits(values: np.ndarray, levels: list[float]) -> tuple[float, float] | None:
    """y limits that show every level (baseline lines), the best episode and the bulk of the
    others, with a 5 % margin. The bottom is the lowest episode unless that lies below both the
    5th percentile and Q1 - 3 IQR (then the lower of those two): a few disastrous early episodes do
    not squash the rest, while a steady climb stays in view."""
    finite = values[np.isfinite(values)]
    pts = [float(v) for v in levels if math.isfinite(v)]
    if finite.size:
        q1, q3 = np.percentile(finite, [25.0, 75.0])
        floor = min(float(np.percentile(finite, 5.0)), float(q1 - 3.0 * (q3 - q1)))
        pts += [max(float(finite.min()), floor), float(finite.max())]
    if not pts:
        return None
    lo, hi = min(pts), max(pts)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-9)
    return lo - pad, hi + pad


def running_mean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(each distinct timestep, mean of the last ``w`` episodes ended by then, ``w``): ``w`` is a
    50th of the episodes, and at least the most episodes that end at one timestep (parallel envs
    finish together), so the curve has one value per timestep and no vertical zigzag."""
    if not len(y):
        return x, y, 1
    steps, counts = np.unique(x, return_counts=True)
    w = max(1, len(y) // 50, int(counts.max()))
    csum = np.concatenate([[0.0], np.cumsum(y)])
    last = np.searchsorted(x, steps, side="right")         # episodes ended by each timestep
    first = np.maximum(last - w, 0)
    return steps, (csum[last] - csum[first]) / (last - first), w


_LEVEL_STYLES = [("tab:orange", "--"), ("tab:green", "-."), ("tab:red", ":"), ("tab:purple", "--"),
                 ("tab:brown", "-."), ("tab:gray", ":")]


def _curve_panel(ax: Any, x: np.ndarray, y: np.ndarray, levels: dict[str, float], styles: dict[str, tuple[str, str]],
                 ylabel: str) -> None:
    """Points, running mean and horizontal reference levels (``styles``: colour and line style per
    level name) on ``ax``, with robust y limits."""
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y):
        ax.plot(x, y, ".", alpha=0.25, color="tab:blue", label="training episode")
        sx, sy, w = running_mean(x, y)
        ax.plot(sx, sy, "-", color="tab:blue", label=f"running mean (last {w} episodes)")
    for name, level in levels.items():
        colour, style = styles[name]
        ax.axhline(level, ls=style, lw=1.4, color=colour, label=name)
    lim = robust_limits(y, list(levels.values()))
    if lim is not None:
        ax.set_ylim(*lim)
        below = int(np.sum(y < lim[0]))
        if below:
            ax.text(0.01, 0.02, f"{below} episode(s) below the axis", transform=ax.transAxes, fontsize=7,
                    color="0.3", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(True, alpha=0.3)


def plot_learning_curve(out: Path, title: str, board: Mapping[str, Any] | None = None,
                        env_id: str | None = None) -> Path:
    """Write ``<out>/learning_curve.png`` (:func:`learning_curve_figure`) atomically."""
    fig = learning_curve_figure(out, title, board, env_id)
    path = Path(out) / "learning_curve.png"
    fig.savefig(path.with_name("learning_curve.tmp.png"))
    os.replace(path.with_name("learning_curve.tmp.png"), path)
    return path


def learning_curve_figure(out: Path, title: str, board: Mapping[str, Any] | None = None,
                          env_id: str | None = None) -> Any:
    """The learning-curve figure of the run in ``out``, from its episode log, in step order.

    Top: the training episodes' return (what it is, per env, in the axis label), with each
    scored policy's mean held-out return as a dashed line when ``board`` (a scoreboard) is given.
    Bottom (when the env reports its primary metric per episode): that metric in the scoreboard's
    unit, with each policy's scoreboard mean. Held-out means come from the deterministic policy on
    held-out seeds; training episodes from the exploring policy on training seeds.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from agents.evaluation import metric_label, unit

    curve = learning_curve(out)
    env_id = env_id or (board or {}).get("env_id")
    metric = (board or {}).get("metric", curve.metric)
    has_metric = bool(np.isfinite(curve.metric_values).any()) and metric == curve.metric
    fig = Figure(figsize=(9.5, 7 if has_metric else 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if has_metric else 1, 1, sharex=True, squeeze=False)[:, 0]
    policies = (board or {}).get("policies", {})
    names = {name: f"{name} ({row.get('kind', 'policy')}, held-out mean)" for name, row in policies.items()}
    styles = {label: _LEVEL_STYLES[i % len(_LEVEL_STYLES)] for i, label in enumerate(names.values())}

    def levels(key: str, scale: float) -> dict[str, float]:
        found = {names[n]: row.get("metrics", {}).get(key, {}).get("mean") for n, row in policies.items()}
        return {label: m / scale for label, m in found.items() if m is not None and math.isfinite(m)}

    _curve_panel(axes[0], curve.timesteps, curve.returns, levels("return", 1.0), styles,
                 RETURN_LABELS.get(env_id or "", "episode return (sum of rewards)"))
    if has_metric:
        scale, _ = unit(metric)
        _curve_panel(axes[1], curve.timesteps, curve.metric_values / scale, levels(metric, scale), styles,
                     f"{metric_label(metric)}\nper training episode")
    if not len(curve.timesteps):
        axes[0].text(0.5, 0.5, "no finished training episode", ha="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("timesteps (global step at each episode's end)")
    axes[0].set_title(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # a level only the lower panel has (never the case today) still gets its entry
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.70, 0.93), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.70, 1))
    return fig

