"""Pure, batched numpy physics shared by envs, vector envs, baselines and the scorer."""
from secure_env.core import channel, noma, qkd, qkd_noma

__all__ = ["channel", "noma", "qkd", "qkd_noma"]
