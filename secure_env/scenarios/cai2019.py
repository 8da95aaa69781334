"""Scenario of Cai et al. 2019 (secure, energy-efficient UAV-OFDMA downlink), spec defaults.

Values are the recommended defaults (``docs/models/uav_ofdma.md``); those the
paper printed are K, N_F, N, tau, B, N0, P_max, R_min, beta0 (probable), H and the rotor table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from secure_env.core.channel import db_to_linear, dbm_to_watt
from secure_env.core.flight import ROTOR_PRESETS, RotorParams
from secure_env.scenarios.validation import bounds, choice, flag, point, points, validate

_COORD = 1e7  # |coordinate| bound in m


@dataclass(frozen=True)
class UavOfdmaScenario:
    """All parameters of the secure UAV-OFDMA model (Cai et al. 2019) and of its reward.

    Geometry: the UAV flies at ``altitude_m`` from ``start_xy`` to ``end_xy`` in ``num_slots``
    slots of ``slot_s``; ground users sit at ``user_xy`` (or, with ``random_users=True``, are drawn
    uniformly per episode in the rectangle with corners ``user_area_xy``); the eavesdropper is
    within ``eve_radius_m`` of ``eve_xy``. Radio: ``bandwidth_hz`` split into ``num_subcarriers``,
    noise PSD ``noise_psd_dbm_hz``, reference gain ``beta0_db`` at 1 m. Limits: per-slot transmit
    power ``peak_power_w`` (C4), total power ``p_max_dbm`` (C5, flight included), mission-average
    rate ``r_min_bps`` per user (C6), leakage SNR ``gamma_tol`` (C7), speed ``v_max_mps`` (C11),
    acceleration ``a_max_mps2`` (C12). ``rotor`` picks the propulsion constants
    (:data:`secure_env.core.flight.ROTOR_PRESETS`). The three ``*_penalty`` weights shape the RL
    reward only (see the env's docstring); no physics depends on them. ``action_mode`` ("full",
    "compact" or "velocity") and ``safety_layer`` (None: on in the learnable modes, off in
    "full") choose the env's action interface (:mod:`secure_env.core.uav_actions`); neither
    changes the model. ``observation_mode`` ("flat": one vector, today's layout; "set": global
    features then ``max_users`` user tokens with a mask, :mod:`secure_env.core.tokens`) and
    ``max_users`` (tokens in the set observation, >= ``num_users``; None: ``num_users``) choose
    the observation; neither changes the model either.
    """

    num_users: int = field(default=3, metadata=bounds(1, 64, integer=True, label="number of users"))
    num_subcarriers: int = field(default=128, metadata=bounds(1, 65536, integer=True, label="number of subcarriers"))
    num_slots: int = field(default=50, metadata=bounds(1, 1e6, integer=True, label="number of time slots"))
    slot_s: float = field(default=2.0, metadata=bounds(0.0, 1e4, lo_open=True, unit="s", label="slot length"))
    bandwidth_hz: float = field(default=1e6, metadata=bounds(0.0, 1e12, lo_open=True, unit="Hz", label="bandwidth"))
    noise_psd_dbm_hz: float = field(default=-110.0,
        metadata=bounds(-250.0, 0.0, unit="dBm/Hz", label="noise power spectral density"))
    beta0_db: float = field(default=-40.0,
        metadata=bounds(-200.0, 0.0, unit="dB", label="reference channel gain at 1 m"))
    altitude_m: float = field(default=100.0, metadata=bounds(0.0, 1e5, lo_open=True, unit="m", label="UAV altitude"))
    p_max_dbm: float = field(default=65.0, metadata=bounds(-30.0, 100.0, unit="dBm", label="maximum total power"))
    r_min_bps: float = field(default=1e4, metadata=bounds(0.0, 1e12, unit="bit/s", label="minimum rate per user"))
    circuit_power_dbm: float = field(default=30.0, metadata=bounds(-100.0, 80.0, unit="dBm", label="circuit power"))
    v_max_mps: float = field(default=30.0,
        metadata=bounds(0.0, 1e3, lo_open=True, unit="m/s", label="maximum UAV speed"))
    a_max_mps2: float = field(default=5.0,
        metadata=bounds(0.0, 1e4, lo_open=True, unit="m/s^2", label="maximum UAV acceleration"))
    gamma_tol: float = field(default=0.5, metadata=bounds(0.0, 1e9, lo_open=True, label="tolerated leakage SNR"))
    peak_power_w: float = field(default=10.0,
        metadata=bounds(0.0, 1e6, lo_open=True, unit="W", label="peak transmit power"))
    eve_radius_m: float = field(default=50.0, metadata=bounds(0.0, 1e6, unit="m", label="eavesdropper radius"))
    eve_xy: tuple[float, float] = field(default=(500.0, 0.0),
        metadata=point(-_COORD, _COORD, label="eavesdropper estimate"))
    start_xy: tuple[float, float] = field(default=(0.0, 0.0), metadata=point(-_COORD, _COORD, label="UAV start"))
    end_xy: tuple[float, float] = field(default=(1000.0, 0.0), metadata=point(-_COORD, _COORD, label="UAV destination"))
    user_xy: tuple[tuple[float, float], ...] = field(
        default=((250.0, 150.0), (500.0, -150.0), (750.0, 150.0)),
        metadata=points(None, -_COORD, _COORD, label="user positions"))
    random_users: bool = field(default=False, metadata=flag(label="drawn user positions"))
    user_area_xy: tuple[tuple[float, float], ...] = field(
        default=((0.0, -250.0), (1000.0, 250.0)), metadata=points(2, -_COORD, _COORD, label="user area corners"))
    rotor: str = field(default="cai2019", metadata=choice(*ROTOR_PRESETS, label="rotor preset"))
    leakage_penalty: float = field(default=1.0, metadata=bounds(0.0, 1e9, label="leakage penalty weight"))
    qos_penalty: float = field(default=1.0, metadata=bounds(0.0, 1e9, label="minimum-rate penalty weight"))
    destination_penalty: float = field(default=1.0, metadata=bounds(0.0, 1e9, label="destination penalty weight"))
    action_mode: str = field(default="full", metadata=choice("full", "compact", "velocity", label="action mode"))
    safety_layer: bool | None = field(default=None, metadata=flag(optional=True, label="safety layer"))
    observation_mode: str = field(default="flat", metadata=choice("flat", "set", label="observation mode"))
    max_users: int | None = field(default=None,
        metadata=bounds(1, 64, integer=True, optional=True, label="user tokens in the set observation"))

    def __post_init__(self) -> None:
        validate(self)
        if self.max_users is not None:
            if self.observation_mode != "set":
                raise ValueError(f"max_users={self.max_users!r} is invalid with observation_mode="
                                 f"{self.observation_mode!r}: it pads the set observation only "
                                 f"(set observation_mode='set', or leave max_users at null)")
            if self.max_users < self.num_users:
                raise ValueError(f"max_users={self.max_users!r} is out of range: it must be at least "
                                 f"num_users={self.num_users} (null: num_users)")
        if not self.random_users and len(self.user_xy) != self.num_users:
            raise ValueError(f"user_xy has {len(self.user_xy)} points but num_users={self.num_users}: "
                             f"give num_users points or set random_users=True")
        (x0, y0), (x1, y1) = self.user_area_xy
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"user_area_xy={self.user_area_xy!r} is invalid: expected the lower-left "
                             f"then the upper-right corner of a rectangle")
        reach = self.v_max_mps * self.slot_s * self.num_slots
        if self.trip_m > reach * (1.0 + 1e-12):
            raise ValueError(f"end_xy={self.end_xy!r} is out of range: it is {self.trip_m:.6g} m from "
                             f"start_xy, more than v_max_mps * slot_s * num_slots = {reach:.6g} m")

    # -- derived constants ---------------------------------------------------------------------
    @property
    def subcarrier_hz(self) -> float:
        """W = B / N_F."""
        return self.bandwidth_hz / self.num_subcarriers

    @property
    def noise_w(self) -> float:
        """Noise power per subcarrier N0 W in W."""
        return float(dbm_to_watt(self.noise_psd_dbm_hz)) * self.subcarrier_hz

    @property
    def beta0(self) -> float:
        """Linear channel gain at 1 m."""
        return float(db_to_linear(self.beta0_db))

    @property
    def gamma0(self) -> float:
        """beta0 / (N0 W) in m^2/W: the SNR of 1 W on one subcarrier at 1 m."""
        return self.beta0 / self.noise_w

    @property
    def p_max_w(self) -> float:
        """Total power limit per slot (C5) in W."""
        return float(dbm_to_watt(self.p_max_dbm))

    @property
    def circuit_power_w(self) -> float:
        """P_C in W."""
        return float(dbm_to_watt(self.circuit_power_dbm))

    @property
    def rotor_params(self) -> RotorParams:
        """The propulsion constants named by ``rotor``."""
        return ROTOR_PRESETS[self.rotor]

    @property
    def dv_max_mps(self) -> float:
        """Largest velocity change between consecutive slots, a_max tau (C12)."""
        return self.a_max_mps2 * self.slot_s

    @property
    def trip_m(self) -> float:
        """Straight-line distance from start to end."""
        return math.dist(self.start_xy, self.end_xy)

    @property
    def user_tokens(self) -> int:
        """Number of user tokens of the set observation: ``max_users``, or ``num_users`` when None."""
        return self.num_users if self.max_users is None else self.max_users

    @property
    def mission_s(self) -> float:
        """T = N tau."""
        return self.num_slots * self.slot_s
