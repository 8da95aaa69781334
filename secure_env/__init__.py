"""secure-uav-gym: Gymnasium environments for secure wireless (QKD-NOMA, secure UAV-OFDMA).

Importing the package registers the environments in the ``secure_env/`` namespace.
"""
from __future__ import annotations

import gymnasium as gym

__version__ = "0.1.0"

_VECTOR_ENTRY_POINTS = {
    "secure_env/QkdNoma-v0": "secure_env.envs.qkd_noma:QkdNomaVectorEnv",
    "secure_env/UavSecureOfdma-v0": "secure_env.envs.uav_ofdma:UavSecureOfdmaVectorEnv",
    "secure_env/QuantumUav-v0": "secure_env.envs.quantum_uav:QuantumUavVectorEnv",
}
_ENTRY_POINTS = {
    "secure_env/QkdNoma-v0": "secure_env.envs.qkd_noma:QkdNomaEnv",
    "secure_env/UavSecureOfdma-v0": "secure_env.envs.uav_ofdma:UavSecureOfdmaEnv",
    "secure_env/QuantumUav-v0": "secure_env.envs.quantum_uav:QuantumUavEnv",
}
ENV_IDS = tuple(_ENTRY_POINTS)


def _register() -> None:
    for env_id, entry_point in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point,
                         vector_entry_point=_VECTOR_ENTRY_POINTS[env_id])


_register()

__all__ = ["ENV_IDS", "__version__"]
