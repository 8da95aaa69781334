"""The shell of the native batched vector envs: B environments stepped with a handful of numpy calls.

Each env's vector version sits beside its single version, as gymnasium keeps ``CartPoleVectorEnv``
in ``cartpole.py``: :class:`~secure_env.envs.qkd_noma.QkdNomaVectorEnv`,
:class:`~secure_env.envs.uav_ofdma.UavSecureOfdmaVectorEnv` and
:class:`~secure_env.envs.quantum_uav.QuantumUavVectorEnv` subclass :class:`BatchedEnv`, which holds
what they share: spaces from a single env, seeding, both autoreset modes, the info masks, render.

``gymnasium.make_vec(id, num_envs=B)`` returns one of them (every id has a ``vector_entry_point``,
which gymnasium picks when no ``vectorization_mode`` is given). They call the same
:mod:`secure_env.core` functions as the single envs, with a leading batch axis, and reproduce B
single envs exactly: sub-env i is seeded with ``seed + i`` (as gymnasium's SyncVectorEnv does) and
draws its random numbers from its own ``numpy.random.Generator`` in the same order as the single
env; random draws happen only when a sub-env resets, so ``step`` has no per-env Python loop except
over the sub-envs that reset.

Autoreset (``autoreset_mode`` keyword; gymnasium 1.4 passes ``make_vec`` keywords to a vector entry
point and refuses ``vector_kwargs`` there, so it is
``gym.make_vec(id, B, autoreset_mode=AutoresetMode.SAME_STEP)``):

* ``AutoresetMode.NEXT_STEP`` (the default, as gymnasium's own vector envs; its vector wrappers
  need it): the step that ends sub-env i returns its last observation and
  ``info["episode_metrics"]``; the next ``step`` ignores i's action and resets it (its first
  observation, reward 0, terminated and truncated False, its reset ``info``). ``info`` is
  SyncVectorEnv's: every key is an array over the batch with a boolean mask ``info["_key"]`` of
  the sub-envs that have it (rows without it hold 0), ``episode_metrics`` a dict of such arrays.
* ``AutoresetMode.SAME_STEP`` (SB3's convention; :mod:`agents.vec_adapter` asks for it): when
  sub-env i ends, the returned observation is already the first one of its next episode;
  ``info["final_obs"][i]`` holds the last observation of the ended episode (mask
  ``info["_final_obs"]``) and ``info["episode_metrics"]`` its metrics (each an array over the
  batch with mask ``info["_episode_metrics"]``). Every other ``info`` key is an array over the
  batch for the step just played (no masks).

``render_mode="rgb_array"``: ``render()`` returns a tuple of B frames, sub-env i drawn by the
single env's renderer from i's state (as SyncVectorEnv's tuple of its envs' frames).
``step`` before ``reset`` raises ``RuntimeError``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

#: the autoreset modes the native vector envs implement
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]
PlayResult = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], dict[str, np.ndarray] | None]


def as_autoreset_mode(value: Any) -> AutoresetMode:
    """``value`` (an ``AutoresetMode`` or its string value) as a supported ``AutoresetMode``."""
    try:
        mode = AutoresetMode(value)
    except (ValueError, TypeError):
        mode = None
    if mode not in AUTORESET_MODES:
        raise ValueError(f"autoreset_mode={value!r} is invalid: expected one of "
                         f"{list(AUTORESET_MODES)} (or their values {[m.value for m in AUTORESET_MODES]})")
    return mode


#: glibc's largest dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit), bytes
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def warm_allocator(batch_bytes: int) -> None:
    """Free one temporary 16 times ``batch_bytes`` (capped at glibc's 32 MB) once, so that the
    batch-sized temporaries of every step come from the heap and stay mapped.

    glibc's malloc serves blocks above its mmap threshold (128 kB at start) with fresh mmaps and
    returns heap memory above the trim threshold to the OS; both thresholds rise, by its documented
    dynamic rule (mallopt(3), M_MMAP_THRESHOLD), to the size of the largest mmapped block freed
    so far. Until some block that large is freed, each (B, N_F) array of a step (256 kB at
    B = 256) is paged in afresh: measured at B = 256 on UavSecureOfdma-v0's full mode, 130k vs
    165k env-steps/s without and with this call. The effect is the one any large temporary of the
    process has (a training run's buffers usually raise the thresholds anyway); no allocator
    setting is changed. Elsewhere than glibc it is one short-lived array."""
    size = min(max(16 * int(batch_bytes), 1 << 20), _MMAP_THRESHOLD_MAX)
    np.empty(size // 8)          # allocated (mmapped) and freed at once: never touched


def _rows(mask: np.ndarray, ndim: int) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def masked_info(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Gymnasium's vector ``info``: each batch array ``info[key]`` kept on ``rows`` (0 elsewhere)
    with the mask ``_key``; no keys where no row has them."""
    out: dict[str, Any] = {}
    if not rows.any():
        return out
    every = bool(rows.all())
    for key, value in info.items():
        arr = np.asarray(value)
        out[key] = arr if every else np.where(_rows(rows, arr.ndim), arr, np.zeros((), arr.dtype))
        out[f"_{key}"] = rows.copy()
    return out


def merge_reset_info(info: dict[str, Any], reset_info: dict[str, Any], rows: np.ndarray) -> None:
    """Put ``reset_info``'s rows ``rows`` into the masked ``info`` (SyncVectorEnv's info of a step that
    resets some sub-envs: their reset info beside the others' step info)."""
    for key, value in reset_info.items():
        arr = np.asarray(value)
        old = info.get(key, np.zeros_like(arr))
        info[key] = np.where(_rows(rows, arr.ndim), arr, old)
        info[f"_{key}"] = info.get(f"_{key}", np.zeros_like(rows)) | rows


class BatchedEnv(VectorEnv):
    """Shared shell: spaces from a single env, per-sub-env generators, both autoreset modes, render.

    Subclasses implement the state: ``_allocate`` (arrays for the batch), ``_draw(i)`` (sub-env
    i's random draws at reset), ``_clear(idx)`` (the rest of a reset, vectorised), ``_play``
    (one batched step, no reset), ``_obs``, ``_reset_info`` and ``_render_one(i)``.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    single_env_cls: type = object

    def __init__(self, num_envs: int = 1, *, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 render_mode: str | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or int(num_envs) < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: expected an integer >= 1")
        self.num_envs = int(num_envs)
        self.autoreset_mode = as_autoreset_mode(autoreset_mode)
        self._template = self.single_env_cls(render_mode=render_mode, **kwargs)   # validates both
        self.metadata = {**self._template.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.scenario = self._template.scenario
        self.single_action_space = self._template.action_space
        self.single_observation_space = self._template.observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(self.num_envs)]
        self._autoreset = np.zeros(self.num_envs, dtype=bool)   # NEXT_STEP: ended, reset at the next step
        self._needs_reset = True
        width = max(int(np.prod(self.single_action_space.shape)), int(np.prod(self.single_observation_space.shape)))
        warm_allocator(8 * self.num_envs * width)

    # -- hooks -------------------------------------------------------------------------------
    def _allocate(self) -> None:
        raise NotImplementedError

    def _draw(self, i: int) -> None:
        raise NotImplementedError

    def _clear(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def _play(self, a: np.ndarray) -> PlayResult:
        """One batched step of every sub-env: reward, terminated, truncated, info (batch arrays)
        and, if any sub-env ended, the episode metrics (batch arrays, valid where it ended)."""
        raise NotImplementedError

    def _obs(self) -> np.ndarray:
        raise NotImplementedError

    def _reset_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _render_one(self, i: int) -> np.ndarray:
        raise NotImplementedError

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self._seed(seed)
        self._allocate()
        for i in range(self.num_envs):
            self._draw(i)
        self._clear(np.arange(self.num_envs))
        self._autoreset[:] = False
        self._needs_reset = False
        info = self._reset_info()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            info = masked_info(info, np.ones(self.num_envs, dtype=bool))
        return self._obs(), info

    def step(self, actions: Any) -> StepResult:
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        a = self._check_action(actions)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next(a)
        return self._step_same(a)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per sub-env (``render_mode="rgb_array"``), else None."""
        if self.render_mode is None:
            return None
        if self._needs_reset:
            raise RuntimeError("render() called before reset(); call reset() first")
        return tuple(self._render_one(i) for i in range(self.num_envs))

    # -- autoreset ---------------------------------------------------------------------------
    def _restart(self, idx: np.ndarray) -> None:
        for i in idx:
            self._draw(int(i))
        self._clear(idx)

    def _step_same(self, a: np.ndarray) -> StepResult:
        reward, terminated, truncated, info, metrics = self._play(a)
        done = terminated | truncated
        obs = self._obs()
        if done.any():
            self._masked(metrics or {}, done, info, "episode_metrics")
            idx = np.flatnonzero(done)
            final = np.empty(self.num_envs, dtype=object)
            for i in idx:
                final[i] = obs[i]
            info["final_obs"], info["_final_obs"] = final, done.copy()
            self._restart(idx)
            obs = self._obs()
        return obs, reward, terminated, truncated, info

    def _step_next(self, a: np.ndarray) -> StepResult:
        ended = self._autoreset
        idx = np.flatnonzero(ended)
        if idx.size:
            self._restart(idx)       # the sub-envs that ended at the previous step start again
        reward, terminated, truncated, info, metrics = self._play(a)
        live = ~ended
        if idx.size:
            self._clear(idx)         # ...and this step was not theirs: back to their first state
            reward = np.where(ended, 0.0, reward)
            terminated, truncated = terminated & live, truncated & live
        out = masked_info(info, live)
        if idx.size:
            merge_reset_info(out, self._reset_info(), ended)
        done = terminated | truncated
        if done.any():
            self._masked(metrics or {}, done, out, "episode_metrics")
        self._autoreset = done
        return self._obs(), reward, terminated, truncated, out

    # -- helpers -----------------------------------------------------------------------------
    def _check_action(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        want = (self.num_envs,) + self.single_action_space.shape
        if a.shape != want:
            raise ValueError(f"actions have shape {a.shape}, expected {want}")
        if not np.isfinite(a).all():
            raise ValueError("actions contain NaN or inf")
        return a

    def _seed(self, seed: int | Sequence[int] | None) -> None:
        if seed is None:
            return
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed has {len(seeds)} entries, expected {self.num_envs}")
        # the same Generator a single env builds in reset(seed=s) (gymnasium.utils.seeding)
        from gymnasium.utils import seeding

        self._rngs = [seeding.np_random(int(s))[0] for s in seeds]

    @staticmethod
    def _masked(values: dict[str, np.ndarray], mask: np.ndarray, info: dict[str, Any], key: str) -> None:
        info[key] = masked_info(values, mask)
        info[f"_{key}"] = mask.copy()


__all__ = ["AUTORESET_MODES", "BatchedEnv", "PlayResult", "StepResult", "as_autoreset_mode", "masked_info",
           "merge_reset_info"]
