"""Thin Gymnasium shells over ``secure_env.core``."""
from secure_env.envs.qkd_noma import QkdNomaEnv

__all__ = ["QkdNomaEnv"]
