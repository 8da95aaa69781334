"""Run folders: where a run writes, what identifies it, and how a killed run is resumed.

One run per folder. Everything a training run writes lives under its run folder:

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

This module owns that layout (:data:`RUN_OUTPUTS`, :data:`TRAINING_OUTPUTS`), the default folder
of a command (:func:`default_out_dir`), the run record ``run.json`` (:func:`read_run`,
:func:`write_run`) and the identity it gives a run (:func:`run_identity`: its kind and
:data:`SETTING_KEYS`), which decides whether a folder can take a run (:func:`out_dir_conflict`) or
already holds it finished (:func:`finished_run`).

Resume: a run killed at any moment resumes with ``resume=True`` from the last checkpoint
(:func:`checkpoint_timesteps` reads its step count) with the settings of its ``run.json``
(:func:`agents.training.prepare_run` checks the command against them), and loses at most the
timesteps since then: :func:`cut_logs` first cuts the episode logs back to the checkpoint, so the
learning curve never holds steps the model has forgotten. Every file is written atomically
(:func:`atomic_write_text`; checkpoints by :func:`agents.callbacks.save_checkpoint`).

Nothing here imports the trainer (Stable-Baselines3 or torch): it only reads and writes files.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any, Mapping

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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
