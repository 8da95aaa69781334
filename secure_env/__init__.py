"""secure-uav-gym: Gymnasium environments for secure wireless (QKD-NOMA, secure UAV-OFDMA).

Importing the package registers the environments in the ``secure_env/`` namespace.
"""
from __future__ import annotations

import gymnasium as gym

__version__ = "0.1.0"

ENV_IDS = ("secure_env/QkdNoma-v0",)


def _register() -> None:
    if "secure_env/QkdNoma-v0" not in gym.registry:
        gym.register(id="secure_env/QkdNoma-v0", entry_point="secure_env.envs.qkd_noma:QkdNomaEnv")


_register()

__all__ = ["ENV_IDS", "__version__"]
