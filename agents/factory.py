"""Stable-Baselines3 algorithms built from per-env YAML hyperparameters (rl-zoo3 layout).

``agents/hyperparams/<algo>.yml`` maps an env id to its hyperparameters, read as rl-zoo3 reads them:
the env id's own entry, complete, or the file's ``default`` entry for an id without one (so a new env
trains without code changes); every entry loads in ``python -m rl_zoo3.train -conf <file>`` as it is.
Project settings rl-zoo3 has no key for (``checkpoint_freq``) sit in the top-level ``project``
mapping, which rl-zoo3 never reads and this factory applies under every entry. Files are read with
``yaml.safe_load`` and no value is ever evaluated as code: where rl-zoo3 writes
``policy_kwargs: "dict(net_arch=[64, 64])"`` we write a YAML mapping (rl-zoo3 takes both).

Keys besides the algorithm's own keyword arguments:
``n_envs`` (parallel envs), ``n_timesteps`` (default budget), ``policy`` (default "MlpPolicy"),
``normalize`` (false, true, or a mapping of VecNormalize keywords), ``env_kwargs`` (scenario
keywords), ``checkpoint_freq`` (timesteps between checkpoints).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

HYPERPARAMS_DIR = Path(__file__).with_name("hyperparams")
ALGOS = ("ppo", "sac", "td3", "a2c")
#: keys the factory consumes itself (everything else goes to the SB3 constructor)
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_kwargs", "checkpoint_freq")


def algo_class(algo: str) -> type:
    """The SB3 class of an algorithm name (ValueError for an unknown one)."""
    import stable_baselines3 as sb3

    algo = algo.lower()
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; allowed: {list(ALGOS)}")
    return getattr(sb3, algo.upper())


#: top-level key of a hyperparameter file holding project settings (not an env id; rl-zoo3 ignores it)
PROJECT_KEY = "project"


def load_hyperparams(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None,
                     directory: Path = HYPERPARAMS_DIR) -> dict[str, Any]:
    """Hyperparameters of ``algo`` on ``env_id``: the file's ``project`` settings, then the env's
    entry (or, for an id without one, the ``default`` entry, as rl-zoo3 picks it), then
    ``overrides`` (later wins; mappings merge one level deep)."""
    algo_class(algo)
    path = Path(directory) / f"{algo.lower()}.yml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        data = {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of env id -> hyperparameters")
    merged: dict[str, Any] = {}
    entry = data.get(env_id) if env_id in data else data.get("default")
    for layer in (data.get(PROJECT_KEY) or {}, entry or {}, overrides or {}):
        if not isinstance(layer, dict):
            raise ValueError(f"{path}: hyperparameters of {env_id!r} must be a mapping")
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def parse_overrides(items: list[str] | None, what: str = "--hp") -> dict[str, Any]:
    """CLI ``key=value`` pairs, each value read as YAML (``lr=1e-3``, ``policy_kwargs={net_arch: [32]}``),
    or whole YAML mappings (``"{eve_radius_m: 150, peak_power_w: 1}"``). ``what`` names the flag in
    error messages."""
    out: dict[str, Any] = {}
    for item in items or []:
        if item.strip().startswith("{"):
            try:
                mapping = yaml.safe_load(item)
            except yaml.YAMLError:
                raise ValueError(f"{what} {item!r}: not a valid YAML mapping") from None
            if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
                raise ValueError(f"{what} {item!r}: expected a mapping of names to values")
            out.update(mapping)
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} is not of the form key=value (or a YAML mapping {{key: value}})")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"{what} {item!r}: value is not valid YAML") from None
    return out


def split_hyperparams(hp: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, algorithm keyword arguments)."""
    run = {k: hp[k] for k in RUN_KEYS if k in hp}
    kwargs = {k: v for k, v in hp.items() if k not in RUN_KEYS}
    return run, kwargs


def coerce_numbers(kwargs: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``3e-4`` as a string (YAML 1.1 wants a dot): turn numeric strings into floats."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                pass
        out[key] = value
    return out
