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

A class cannot be written in YAML: ``policy_kwargs: {features_extractor_class: user_set,
features_extractor_kwargs: {...}}`` names a registered extractor (:data:`agents.encoders.EXTRACTORS`;
never evaluated text), which :func:`resolve_policy_kwargs` turns into the class when the model is
built. rl-zoo3 cannot read such a name, so no entry of the files uses it: pass it with ``--hp``.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from pathlib import Path
from typing import Any, Collection, Mapping

import yaml

from secure_env.scenarios.validation import bounds, check_value

HYPERPARAMS_DIR = Path(__file__).with_name("hyperparams")
ALGOS = ("ppo", "sac", "td3", "a2c")
#: keys the factory consumes itself (everything else goes to the SB3 constructor)
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "env_kwargs", "checkpoint_freq")
#: constructor arguments train() sets itself (not hyperparameters)
RESERVED_KWARGS = ("self", "policy", "env", "seed", "tensorboard_log", "verbose", "_init_setup_model")


def algo_class(algo: str) -> type:
    """The SB3 class of an algorithm name (ValueError for an unknown one)."""
    import stable_baselines3 as sb3

    algo = algo.lower()
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; allowed: {list(ALGOS)}")
    return getattr(sb3, algo.upper())


#: top-level key of a hyperparameter file holding project settings (not an env id; rl-zoo3 ignores it)
PROJECT_KEY = "project"


#: settings applied on top of an algorithm's entry when a run's env keywords match (train.py only)
VARIANTS_FILE = "variants.yml"


def variant(algo: str, env_id: str, env_kwargs: Mapping[str, Any], directory: Path = HYPERPARAMS_DIR
            ) -> dict[str, Any] | None:
    """The first variant of ``variants.yml`` for ``env_id`` whose ``algos`` hold ``algo``, whose
    ``when`` keywords all equal the run's ``env_kwargs`` and whose own ``env_kwargs`` the run does
    not set to other values (``--env-kw observation_mode=flat`` opts out of the set variant): its
    ``hyperparams`` with its ``env_kwargs`` among them (None when none matches). rl-zoo3 does not
    read the file."""
    path = Path(directory) / VARIANTS_FILE
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    for i, v in enumerate(data.get(env_id) or []):
        if not isinstance(v, dict) or not set(v) <= {"algos", "when", "hyperparams", "env_kwargs", "why"}:
            raise ValueError(f"{path}: {env_id} variant {i}: expected a mapping of algos, when, hyperparams, "
                             f"env_kwargs, why")
        when = v.get("when") or {}
        # a run that sets one of the variant's own env keywords otherwise has chosen against it
        against = any(k in env_kwargs and env_kwargs[k] != val for k, val in (v.get("env_kwargs") or {}).items())
        if algo.lower() in (v.get("algos") or []) and not against and all(env_kwargs.get(k) == val
                                                                          for k, val in when.items()):
            hp = dict(v.get("hyperparams") or {})
            if v.get("env_kwargs"):
                hp["env_kwargs"] = dict(v["env_kwargs"])
            return hp
    return None


def load_hyperparams(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None,
                     directory: Path = HYPERPARAMS_DIR, env_kwargs: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """Hyperparameters of ``algo`` on ``env_id``: the file's ``project`` settings, then the env's
    entry (or, for an id without one, the ``default`` entry, as rl-zoo3 picks it), then (given the
    run's ``env_kwargs``) the matching :func:`variant`, then ``overrides`` (later wins; mappings
    merge one level deep)."""
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
    extra = None
    if env_kwargs is not None and isinstance(entry, dict):
        extra = variant(algo, env_id, {**(entry.get("env_kwargs") or {}), **env_kwargs}, directory)
    for layer in (data.get(PROJECT_KEY) or {}, entry or {}, extra or {}, overrides or {}):
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


_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
               list: "a list", tuple: "a list", type(None): "null"}


def _yaml_types(annotation: Any) -> tuple[type, ...] | None:
    """The YAML value types an annotation admits (None: cannot tell, accept anything; ``()``: no
    YAML value fits, e.g. a callable or a class)."""
    if annotation is inspect.Parameter.empty or isinstance(annotation, (str, typing.ForwardRef)):
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_yaml_types(a) for a in typing.get_args(annotation)]
        if any(p is None for p in parts):
            return None
        return tuple(dict.fromkeys(t for p in parts for t in p))
    if annotation is type(None):
        return (type(None),)
    if annotation is float:
        return (int, float)
    if annotation in (bool, int, str):
        return (annotation,)
    base = origin or annotation
    if base is dict:
        return (dict,)
    if base in (list, tuple):
        return (list, tuple)
    return ()


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, accepted)


def _as_int(key: str, value: Any, low: int, what: str) -> int:
    """``value`` as an integer >= ``low`` (an integral float such as YAML's 1.0e5 counts)."""
    if isinstance(value, str):
        value = coerce_numbers({key: value})[key]
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} {key}={value!r}: expected an integer >= {low}")
    return value


#: ranges SB3's algorithms define for their numeric hyperparameters, as the scenario fields'
#: metadata (:func:`secure_env.scenarios.validation.bounds`, checked by its ``check_value``).
#: Checked where the value is a number (``ent_coef: auto``, schedules and None pass to the type
#: check and the constructor).
HP_RANGES: dict[str, dict[str, Any]] = {
    "learning_rate": bounds(0.0, None, lo_open=True),
    "gamma": bounds(0.0, 1.0),   # 0 is a contextual bandit (QkdNoma-v0's tuned entry)
    "gae_lambda": bounds(0.0, 1.0),
    "clip_range": bounds(0.0, None, lo_open=True),
    "clip_range_vf": bounds(0.0, None, lo_open=True),
    "ent_coef": bounds(0.0, None),
    "vf_coef": bounds(0.0, None),
    "max_grad_norm": bounds(0.0, None, lo_open=True),
    "target_kl": bounds(0.0, None, lo_open=True),
    "n_steps": bounds(1, None, integer=True),
    "batch_size": bounds(1, None, integer=True),
    "n_epochs": bounds(1, None, integer=True),
    "rms_prop_eps": bounds(0.0, None, lo_open=True),
    "tau": bounds(0.0, 1.0, lo_open=True),
    "buffer_size": bounds(1, None, integer=True),
    "learning_starts": bounds(0, None, integer=True),
    "gradient_steps": bounds(-1, None, integer=True),
    "policy_delay": bounds(1, None, integer=True),
    "target_policy_noise": bounds(0.0, None),
    "target_noise_clip": bounds(0.0, None),
    "target_update_interval": bounds(1, None, integer=True),
    "sde_sample_freq": bounds(-1, None, integer=True),
}


def _check_range(key: str, value: Any, where: str) -> None:
    """ValueError (prefixed by ``where``) when a numeric ``value`` of ``key`` lies outside
    :data:`HP_RANGES`."""
    if key not in HP_RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    try:
        check_value(key, value, HP_RANGES[key])
    except ValueError as err:
        raise ValueError(f"{where} {err}") from None


#: the key of ``policy_kwargs`` that names a registered features extractor
EXTRACTOR_KEY = "features_extractor_class"


def extractor_names() -> list[str]:
    """The registered features extractor names (:data:`agents.encoders.EXTRACTORS`)."""
    from agents.encoders import EXTRACTORS

    return sorted(EXTRACTORS)


def _check_policy_kwargs(value: Any, where: str, norm: Any) -> None:
    """A named features extractor must be registered, its keywords a mapping; the set encoder reads
    the token masks, which VecNormalize would rescale, so it needs ``normalize`` off or with
    ``norm_obs: false``."""
    if not isinstance(value, dict) or EXTRACTOR_KEY not in value:
        return
    name = value[EXTRACTOR_KEY]
    if not isinstance(name, str) or name not in extractor_names():
        raise ValueError(f"{where} policy_kwargs.{EXTRACTOR_KEY}={name!r}: unknown features extractor; "
                         f"allowed: {extractor_names()}")
    fkw = value.get("features_extractor_kwargs")
    if fkw is not None and not (isinstance(fkw, dict) and all(isinstance(k, str) for k in fkw)):
        raise ValueError(f"{where} policy_kwargs.features_extractor_kwargs={fkw!r}: expected a mapping of keywords")
    if norm is True or (isinstance(norm, dict) and norm.get("norm_obs", True)):
        raise ValueError(f"{where} policy_kwargs.{EXTRACTOR_KEY}={name}: VecNormalize would rescale the "
                         f"observation's token masks; set normalize={{norm_obs: false}} (rewards may stay "
                         f"normalised) or normalize=false")


def resolve_policy_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Algorithm keyword arguments with ``policy_kwargs.features_extractor_class`` turned from a
    registered name into its class (a copy; a class, or no such key, stays as it is). An unknown
    name raises a one-line ValueError naming the key."""
    out = dict(kwargs)
    pk = out.get("policy_kwargs")
    if isinstance(pk, dict) and isinstance(pk.get(EXTRACTOR_KEY), str):
        from agents.encoders import EXTRACTORS

        name = pk[EXTRACTOR_KEY]
        if name not in EXTRACTORS:
            raise ValueError(f"policy_kwargs.{EXTRACTOR_KEY}={name!r}: unknown features extractor; "
                             f"allowed: {sorted(EXTRACTORS)}")
        out["policy_kwargs"] = {**pk, EXTRACTOR_KEY: EXTRACTORS[name]}
    return out


def complete_extractor_kwargs(hyperparams: Mapping[str, Any], layout: Mapping[str, int] | None) -> dict[str, Any]:
    """``hyperparams`` with the ``user_set`` extractor's layout keywords (``global_dim``,
    ``token_dim``, ``num_tokens``) filled from the env's ``observation_layout`` where not given (a
    copy). ValueError when the extractor is asked for and the env has no set observation."""
    pk = hyperparams.get("policy_kwargs")
    if not (isinstance(pk, dict) and pk.get(EXTRACTOR_KEY) == "user_set"):
        return dict(hyperparams)
    if layout is None:
        raise ValueError(f"policy_kwargs.{EXTRACTOR_KEY}=user_set reads the set observation: "
                         f"add --env-kw observation_mode=set")
    fkw = {**layout, **(pk.get("features_extractor_kwargs") or {})}
    return {**hyperparams, "policy_kwargs": {**pk, "features_extractor_kwargs": fkw}}


def validate_hyperparams(algo: str, hp: Mapping[str, Any], cli_keys: Collection[str] = ()
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check merged hyperparameters and split them into (run settings, algorithm keyword arguments).

    Run keys are checked for type and range (``n_envs >= 1``, ``n_timesteps >= 0``,
    ``checkpoint_freq >= 1``, ``normalize`` false/true/VecNormalize keywords, ``env_kwargs`` a
    mapping); every other key must be a keyword of the algorithm's constructor, with a value of the
    type its signature declares and, where SB3 defines one, in its range (:data:`HP_RANGES`:
    ``gamma`` in [0, 1], ``gae_lambda`` in [0, 1], ``clip_range > 0``, ...); a features extractor named in
    ``policy_kwargs`` must be registered (:func:`extractor_names`), and the set encoder needs
    ``normalize`` without observation normalisation. A one-line ``ValueError`` names the key and where it came from
    (``--hp`` for ``cli_keys``, else the hyperparameter file); nothing is built here (the
    constructor itself is tried by :func:`agents.training.prepare_run`).
    """
    from stable_baselines3.common.vec_env import VecNormalize

    cls = algo_class(algo)
    source = f"agents/hyperparams/{algo.lower()}.yml:"

    def where(key: str) -> str:
        return "--hp" if key in cli_keys else source

    run, kwargs = split_hyperparams(hp)
    kwargs = coerce_numbers(kwargs)
    for key, low in (("n_envs", 1), ("n_timesteps", 0), ("checkpoint_freq", 1)):
        if key in run:
            run[key] = _as_int(key, run[key], low, where(key))
    if "policy" in run and not isinstance(run["policy"], str):
        raise ValueError(f"{where('policy')} policy={run['policy']!r}: expected a policy name such as MlpPolicy")
    norm = run.get("normalize", False)
    if isinstance(norm, dict):
        allowed = [p for p in inspect.signature(VecNormalize.__init__).parameters if p not in ("self", "venv")]
        bad = sorted(set(norm) - set(allowed))
        if bad:
            raise ValueError(f"{where('normalize')} normalize: unknown VecNormalize keyword(s) {bad}; allowed: {allowed}")
    elif not isinstance(norm, bool):
        raise ValueError(f"{where('normalize')} normalize={norm!r}: expected true, false or a mapping of VecNormalize keywords")
    env_kwargs = run.get("env_kwargs")
    if env_kwargs is not None and not (isinstance(env_kwargs, dict) and all(isinstance(k, str) for k in env_kwargs)):
        raise ValueError(f"{where('env_kwargs')} env_kwargs={env_kwargs!r}: expected a mapping of env keywords")
    params = inspect.signature(cls.__init__).parameters
    name = cls.__name__
    for key, value in kwargs.items():
        if key in RESERVED_KWARGS:
            raise ValueError(f"{where(key)} {key}: set by train.py itself, not a hyperparameter")
        if key not in params:
            allowed = sorted([*RUN_KEYS, *(p for p in params if p not in RESERVED_KWARGS)])
            raise ValueError(f"{where(key)} {key}: not a {name} hyperparameter; allowed: {', '.join(allowed)}")
        accepted = _yaml_types(params[key].annotation)
        if accepted is not None and not _fits(value, accepted):
            names = [_TYPE_NAMES.get(t, t.__name__) for t in accepted if not (t is int and float in accepted)]
            expected = " or ".join(dict.fromkeys(names)) or "a Python object (not settable from YAML)"
            raise ValueError(f"{where(key)} {key}={value!r}: {name} expects {expected}")
        _check_range(key, value, where(key))
        if key == "policy_kwargs":
            _check_policy_kwargs(value, where(key), norm)
    return run, kwargs
