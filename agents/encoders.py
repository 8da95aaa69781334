"""Order-free features extractors for the UAV envs' set observation (``observation_mode="set"``).

The observation is ``[global (G) | token 0 (W) | ... | token M-1 (W)]`` with the mask (1: a real
user, 0: padding, every entry 0) as the last entry of every token
(:mod:`secure_env.core.tokens`). :class:`UserSetExtractor` is a Deep Sets encoder over it:

* the global part goes through an MLP rho: g = rho(global);
* every token, without its mask and concatenated with the raw global part, goes through one
  shared MLP phi: h_k = phi([token_k, global]) (the context lets phi relate a user to the UAV's
  route and to the eavesdropper disc, which sit in the global part);
* the h_k of the real tokens are pooled by their mean and their elementwise max (masked: a padded
  token is replaced by 0 before the sum and by -inf before the max, so its values never reach the
  output, NaN included; an observation without a real token pools to 0);
* features = [g, mean, max] (``hidden_dim`` each; a further token group appended after the users,
  ``extra_token_groups``, gets its own phi and adds its own mean and max).

Why Deep Sets and not attention: the sets are small (K = 3 users by default, at most 64) and the
signal an agent needs is per user relative to the UAV and to one disc, which phi sees directly
through the global context; mean + max pooling over such embeddings represents any continuous set
function given enough width (Zaheer et al. 2017). It costs two small MLPs per step (decision time
per episode is a scored quantity, <= 50 ms), its masking is exact by construction (a selection, not
a large negative logit), and it has no softmax to saturate early in PPO training. Attention (a
key-padding-masked block before the pooling) is the next step if user-user interactions turn out
to matter.

The class is pickled by reference (``agents.encoders.UserSetExtractor``) in a saved model's
``policy_kwargs``, so ``PPO.load(path)`` finds it wherever ``agents`` is importable. YAML files
and ``--hp`` name it by its registered name (:data:`EXTRACTORS`, resolved by
:func:`agents.factory.resolve_policy_kwargs`); the layout keywords, when not given, are filled
from the env (``env.observation_layout``) by ``train.py``.
"""
from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def _mlp(n_in: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods)


def masked_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean and max of token embeddings ``h`` (B, M, H) over the tokens where ``mask`` (B, M,
    bool) is set: (B, 2H). Padded tokens are selected away (their values, even NaN or inf, never
    enter); a row without a real token pools to zeros."""
    m = mask.unsqueeze(-1)
    count = mask.sum(dim=1, keepdim=True).to(h.dtype)                          # (B, 1)
    zero = torch.zeros((), dtype=h.dtype, device=h.device)
    mean = torch.where(m, h, zero).sum(dim=1) / count.clamp(min=1.0)
    top = torch.where(m, h, torch.full((), -torch.inf, dtype=h.dtype, device=h.device)).amax(dim=1)
    top = torch.where(count > 0, top, zero)
    return torch.cat([mean, top], dim=-1)


class UserSetExtractor(BaseFeaturesExtractor):
    """Deep Sets over ``[global | tokens]`` (see the module docstring).

    :param observation_space: a flat ``Box`` of size ``global_dim + num_tokens * token_dim`` (+ the
        extra groups)
    :param global_dim: G, the leading global features
    :param token_dim: W, entries per user token, the mask last
    :param num_tokens: M, user tokens (real and padded)
    :param extra_token_groups: further token groups after the users, each ``(count, width)`` with
        the mask last (e.g. one token per eavesdropper disc)
    :param hidden_dim: width of rho and phi and of each pooled embedding
    :param layers: linear layers (each with ReLU) in rho and in phi
    """

    def __init__(self, observation_space: gym.spaces.Box, global_dim: int, token_dim: int, num_tokens: int,
                 extra_token_groups: Sequence[Sequence[int]] = (), hidden_dim: int = 64, layers: int = 2) -> None:
        groups = [(int(num_tokens), int(token_dim))] + [(int(n), int(w)) for n, w in extra_token_groups]
        size = int(global_dim) + sum(n * w for n, w in groups)
        if len(observation_space.shape) != 1 or observation_space.shape[0] != size:
            raise ValueError(f"UserSetExtractor: observation of shape {observation_space.shape} does not match "
                             f"global_dim={global_dim} + tokens {groups} (= {size}); use the env's "
                             f"observation_layout (observation_mode='set')")
        if int(global_dim) < 0 or any(n < 1 or w < 2 for n, w in groups):
            raise ValueError(f"UserSetExtractor: expected global_dim >= 0 and token groups of >= 1 tokens of "
                             f">= 2 entries (features, then the mask), got {global_dim}, {groups}")
        super().__init__(observation_space, features_dim=hidden_dim * (1 + 2 * len(groups)))
        self.global_dim = int(global_dim)
        self.groups = groups
        self.rho = _mlp(max(self.global_dim, 1), hidden_dim, layers)
        self.phis = nn.ModuleList(_mlp(w - 1 + self.global_dim, hidden_dim, layers) for _, w in groups)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        g = observations[:, :self.global_dim]
        parts = [self.rho(g if self.global_dim else observations[:, :0].new_zeros(observations.shape[0], 1))]
        start = self.global_dim
        for (n, w), phi in zip(self.groups, self.phis):
            tok = observations[:, start:start + n * w].reshape(-1, n, w)
            start += n * w
            mask = tok[..., -1] > 0.5
            x = torch.cat([tok[..., :-1], g.unsqueeze(1).expand(-1, n, -1)], dim=-1)
            parts.append(masked_pool(phi(x), mask))
        return torch.cat(parts, dim=-1)


#: features extractors by the name YAML files and ``--hp`` use for them
EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {"user_set": UserSetExtractor}

__all__ = ["EXTRACTORS", "UserSetExtractor", "masked_pool"]
