"""Training and test layouts of a benchmark task, both named by reset seeds (Procgen's levels).

A *layout* is what an env draws at ``reset(seed=s)``: the users (``random_users=True``), the
channels of QkdNoma-v0's episode, or nothing at all for a fixed layout. A task's **test set** is a
list of seeds; its **training distribution** is a pool of seeds ``[first, first + count)`` that
:class:`LayoutPool` samples at every reset with its own seeded generator, so training never sees
a layout outside the pool. The suite file keeps the pools and test sets in separate seed blocks
(checked by :func:`agents.benchmark.suite.load_suite`), and the tests compare the layouts
themselves (:func:`layout_fingerprints`).
"""
from __future__ import annotations

from typing import Any, Iterable

import hashlib

import gymnasium as gym
import numpy as np

from agents.evaluation import LAYOUT_DECIMALS, make_env


class LayoutPool(gym.Wrapper):
    """Reset into a layout drawn uniformly from the seed pool ``[first, first + count)``.

    ``reset(seed=x)`` seeds the pool's own generator with ``x`` (as gymnasium seeds an env), then
    every reset resets the wrapped env with ``seed = first + rng.integers(count)``; ``info`` gains
    ``layout_seed``. Everything random in an episode of the library's envs is drawn at reset, so
    the episode is the pool layout's episode.
    """

    def __init__(self, env: gym.Env, first: int, count: int) -> None:
        super().__init__(env)
        if isinstance(first, bool) or not isinstance(first, (int, np.integer)) or first < 0:
            raise ValueError(f"layout pool first seed must be an integer >= 0, got {first!r}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"layout pool count must be an integer >= 1, got {count!r}")
        self.first, self.count = int(first), int(count)
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        layout_seed = self.first + int(self._rng.integers(self.count))
        obs, info = self.env.reset(seed=layout_seed, options=options)
        return obs, {**info, "layout_seed": layout_seed}


def pool_seeds(first: int, count: int) -> range:
    """The seeds of a pool."""
    return range(int(first), int(first) + int(count))


def reset_fingerprint(reset_info: dict[str, Any]) -> str:
    """A hash of every array of a reset ``info`` (users, eavesdropper, start position, QkdNoma-v0's
    user positions and first channel gains; rounded to :data:`agents.evaluation.LAYOUT_DECIMALS`):
    equal for equal layouts, different for any two drawn layouts."""
    h = hashlib.sha1()
    for key in sorted(reset_info):
        value = reset_info[key]
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            arr = np.round(value.astype(np.float64), LAYOUT_DECIMALS) + 0.0
            h.update(key.encode() + repr(arr.shape).encode() + arr.tobytes())
    return h.hexdigest()[:16]


def layout_fingerprints(env_id: str, env_kwargs: dict[str, Any], seeds: Iterable[int]) -> dict[int, str]:
    """Seed -> :func:`reset_fingerprint` of the layout ``reset(seed=seed)`` draws."""
    env = make_env(env_id, **env_kwargs)
    try:
        return {int(s): reset_fingerprint(env.reset(seed=int(s))[1]) for s in seeds}
    finally:
        env.close()
