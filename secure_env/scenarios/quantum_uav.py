"""Scenario of QuantumUav-v0: the cai2019 UAV scenario plus the QKD parameters of yang2019."""
from __future__ import annotations

from dataclasses import dataclass, field

from secure_env.scenarios.cai2019 import UavOfdmaScenario
from secure_env.scenarios.validation import bounds, flag


@dataclass(frozen=True)
class QuantumUavScenario(UavOfdmaScenario):
    """:class:`UavOfdmaScenario` plus a QKD phase per user at the start of every slot.

    ``photons_m`` (m of Yang et al. eq. (7)), ``alpha_beta`` (|alpha||beta|, error constant
    A = 4 |alpha|^2 |beta|^2), ``light_speed_mps`` (c), ``qkd_source_power_w`` (power drawn during
    QKD, default 0) and ``qkd_enabled`` (False: no QKD phase and e_k = 0, which is
    UavSecureOfdma-v0 exactly).
    """

    photons_m: int = field(default=10, metadata=bounds(1, 1e9, integer=True, unit="pairs", label="QKD test pairs m"))
    alpha_beta: float = field(default=0.5,
        metadata=bounds(0.0, 0.5, lo_open=True, label="|alpha||beta| of the QKD states"))
    light_speed_mps: float = field(default=3e8,
        metadata=bounds(0.0, None, lo_open=True, unit="m/s", label="speed of light"))
    qkd_source_power_w: float = field(default=0.0, metadata=bounds(0.0, 1e6, unit="W", label="QKD source power"))
    qkd_enabled: bool = field(default=True, metadata=flag(label="QKD phase on"))
