"""Scenario of Yang et al. 2019 (QKD then NOMA, max-min secure rate), with the paper's defaults."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from secure_env.core.channel import dbm_to_watt
from secure_env.core.qkd import error_constant
from secure_env.scenarios.validation import bounds, choice, validate


@dataclass(frozen=True)
class QkdNomaScenario:
    """All parameters of the QKD-NOMA model. Defaults are the paper's Section IV set-up.

    The base station sits at the centre of an ``area_m`` x ``area_m`` square in which the users are
    drawn uniformly once per episode; distances are clipped below at ``min_distance_m``.
    ``noise_dbm`` is the total noise power over the band (-174 dBm/Hz + 60 dB + 10 dB noise figure).
    ``multiple_access`` selects stage 2: "noma" (the paper's system) or "tdma" (its benchmark).
    """

    num_users: int = field(default=2, metadata=bounds(1, 64, integer=True, label="number of users"))
    p_max_dbm: float = field(default=30.0, metadata=bounds(-30.0, 60.0, unit="dBm", label="maximum total power"))
    bandwidth_hz: float = field(default=1e6, metadata=bounds(0.0, 1e12, lo_open=True, unit="Hz", label="bandwidth"))
    noise_dbm: float = field(default=-104.0, metadata=bounds(-250.0, 30.0, unit="dBm", label="noise power"))
    frame_s: float = field(default=1.0, metadata=bounds(0.0, 1e6, lo_open=True, unit="s", label="frame length"))
    light_speed_mps: float = field(default=3e8,
        metadata=bounds(0.0, None, lo_open=True, unit="m/s", label="speed of light"))
    photons_m: int = field(default=10, metadata=bounds(1, 1e9, integer=True, unit="pairs", label="QKD test pairs m"))
    alpha_beta: float = field(default=0.5,
        metadata=bounds(0.0, 0.5, lo_open=True, label="|alpha||beta| of the QKD states"))
    area_m: float = field(default=1000.0, metadata=bounds(0.0, 1e7, lo_open=True, unit="m", label="cell side"))
    min_distance_m: float = field(default=1.0,
        metadata=bounds(0.0, 1e6, lo_open=True, unit="m", label="minimum user distance"))
    frames_per_episode: int = field(default=20, metadata=bounds(1, 1e7, integer=True, label="frames per episode"))
    multiple_access: str = field(default="noma", metadata=choice("noma", "tdma", label="multiple access"))

    def __post_init__(self) -> None:
        validate(self)
        if self.min_distance_m > self.area_m * math.sqrt(0.5):
            raise ValueError(f"min_distance_m={self.min_distance_m!r} is out of range: it must not "
                             f"exceed the half-diagonal of the area ({self.area_m * math.sqrt(0.5)} m)")

    @property
    def p_max_w(self) -> float:
        """Total transmit power budget in W."""
        return float(dbm_to_watt(self.p_max_dbm))

    @property
    def noise_w(self) -> float:
        """Noise power over the band in W."""
        return float(dbm_to_watt(self.noise_dbm))

    @property
    def error_constant(self) -> float:
        """A = 4 |alpha|^2 |beta|^2: the error rate at eps = 1."""
        return float(error_constant(self.alpha_beta))
