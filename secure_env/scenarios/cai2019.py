"""Scenario of Cai et al. 2019 (secure, energy-efficient UAV-OFDMA downlink), spec defaults.

Values are the recommended defaults (``docs/models/uav_ofdma.md``); those the
paper printed are K, N_F, N, tau, B, N0, P_max, R_min, beta0 (probable), H and the rotor table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from secure_env.core.channel import db_to_linear, dbm_to_watt
from secure_env.core.flight import ROTOR_PRESETS, RotorParams
from secure_env.scenarios.validation import bounds, choice, discs, flag, point, points, validate

_COORD = 1e7  # |coordinate| bound in m
#: most eavesdropper discs a scenario may hold
MAX_EVES = 16
_DEFAULT_EVE = ((500.0, 0.0), 50.0)


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

    Extension (not in the paper): ``eve_discs`` gives J discs (x, y, r_E) instead of ``eve_xy`` and
    ``eve_radius_m`` (C7 holds against every disc); ``random_eves`` draws ``num_eves`` discs per
    reset, centres uniform in ``eve_area_xy`` (None: ``user_area_xy``), radii uniform in
    ``eve_radius_range_m`` (None: ``eve_radius_m``); ``num_users_range`` (lo, hi) with
    ``random_users`` draws the number of users per episode (``num_users`` = hi sizes the spaces;
    :func:`~secure_env.scenarios.make_scenario` sets it). See ``docs/models/uav_ofdma.md``.
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
    eve_discs: tuple[tuple[float, float, float], ...] | None = field(default=None,
        metadata=discs(-_COORD, _COORD, 1e6, optional=True, label="eavesdropper discs"))
    random_eves: bool = field(default=False, metadata=flag(label="drawn eavesdroppers"))
    num_eves: int | None = field(default=None,
        metadata=bounds(1, MAX_EVES, integer=True, optional=True, label="number of drawn eavesdroppers"))
    eve_radius_range_m: tuple[float, float] | None = field(default=None,
        metadata=point(0.0, 1e6, optional=True, label="drawn eavesdropper radius range",
                       what="a (smallest, largest) pair"))
    eve_area_xy: tuple[tuple[float, float], ...] | None = field(default=None,
        metadata=points(2, -_COORD, _COORD, optional=True, label="eavesdropper area corners"))
    num_users_range: tuple[float, float] | None = field(default=None,
        metadata=point(1, 64, unit="", optional=True, label="range of the number of users",
                       what="a (smallest, largest) pair"))

    def __post_init__(self) -> None:
        validate(self)
        self._check_user_range()
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
        self._check_eves()
        reach = self.v_max_mps * self.slot_s * self.num_slots
        if self.trip_m > reach * (1.0 + 1e-12):
            raise ValueError(f"end_xy={self.end_xy!r} is out of range: it is {self.trip_m:.6g} m from "
                             f"start_xy, more than v_max_mps * slot_s * num_slots = {reach:.6g} m")

    def _check_eves(self) -> None:
        """The eavesdropper keywords: one way to give the discs, drawn-disc keywords only with
        ``random_eves`` (a clear error rather than a keyword silently ignored)."""
        legacy = (tuple(self.eve_xy), self.eve_radius_m) != _DEFAULT_EVE
        if self.eve_discs is not None and legacy:
            raise ValueError(f"eve_discs={self.eve_discs!r} is invalid together with eve_xy/eve_radius_m: give "
                             f"every disc in eve_discs, or one disc by eve_xy and eve_radius_m")
        if self.random_eves:
            if self.eve_discs is not None:
                raise ValueError("eve_discs is invalid with random_eves=True: the discs are drawn at each reset "
                                 "(set num_eves, eve_area_xy, eve_radius_m or eve_radius_range_m instead)")
            if tuple(self.eve_xy) != _DEFAULT_EVE[0]:
                raise ValueError(f"eve_xy={self.eve_xy!r} is invalid with random_eves=True: the disc centres are "
                                 f"drawn in eve_area_xy at each reset")
        else:
            for name in ("num_eves", "eve_radius_range_m", "eve_area_xy"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}={getattr(self, name)!r} is invalid without random_eves=True: it "
                                     f"shapes the drawn eavesdroppers only")
        if self.eve_radius_range_m is not None:
            lo, hi = self.eve_radius_range_m
            if lo > hi:
                raise ValueError(f"eve_radius_range_m={self.eve_radius_range_m!r} is invalid: expected "
                                 f"(smallest, largest) radius with smallest <= largest")
        if self.eve_area_xy is not None:
            (x0, y0), (x1, y1) = self.eve_area_xy
            if not (x0 <= x1 and y0 <= y1):
                raise ValueError(f"eve_area_xy={self.eve_area_xy!r} is invalid: expected the lower-left "
                                 f"then the upper-right corner of a rectangle")

    def _check_user_range(self) -> None:
        """``num_users_range`` (lo, hi): whole numbers 1 <= lo <= hi <= 64, drawn users, and
        ``num_users`` = hi (the spaces are sized for the most users; make_scenario sets it)."""
        if self.num_users_range is None:
            return
        lo, hi = self.num_users_range
        if lo != int(lo) or hi != int(hi) or lo > hi:
            raise ValueError(f"num_users_range={self.num_users_range!r} is invalid: expected (smallest, largest) "
                             f"whole numbers of users with 1 <= smallest <= largest <= 64")
        object.__setattr__(self, "num_users_range", (int(lo), int(hi)))
        if not self.random_users:
            raise ValueError(f"num_users_range={self.num_users_range!r} is invalid without random_users=True: "
                             f"the users of an episode are drawn, their number too")
        if self.num_users != int(hi):
            raise ValueError(f"num_users={self.num_users!r} is invalid with num_users_range={self.num_users_range!r}: "
                             f"num_users is the largest number of users ({int(hi)}), the size of the spaces")

    @property
    def user_range(self) -> tuple[int, int]:
        """(smallest, largest) number of users of an episode: ``num_users_range``, or K both."""
        return (self.num_users, self.num_users) if self.num_users_range is None else self.num_users_range

    # -- eavesdroppers (extension: J discs, drawn discs) ---------------------------------------
    @property
    def eavesdroppers(self) -> tuple[tuple[float, float, float], ...]:
        """The J fixed discs (x, y, r_E): ``eve_discs``, or the one disc of ``eve_xy`` and
        ``eve_radius_m``. With ``random_eves`` the discs are drawn at each reset instead
        (:func:`secure_env.core.uav_ofdma.sample_eves`); this is then the J = 1 default."""
        if self.eve_discs is not None:
            return tuple(self.eve_discs)
        return ((float(self.eve_xy[0]), float(self.eve_xy[1]), float(self.eve_radius_m)),)

    @property
    def num_eve_discs(self) -> int:
        """J: ``num_eves`` (default 1) with ``random_eves``, else the number of fixed discs."""
        if self.random_eves:
            return 1 if self.num_eves is None else self.num_eves
        return len(self.eavesdroppers)

    @property
    def eve_tokens(self) -> int:
        """Disc tokens in the set observation: J where the eavesdropper keywords of the extension
        are used (``eve_discs`` or ``random_eves``), 0 for the paper's one fixed disc (its offset
        and radius are in the global features)."""
        return self.num_eve_discs if (self.eve_discs is not None or self.random_eves) else 0

    @property
    def eve_area(self) -> tuple[tuple[float, float], ...]:
        """Rectangle the drawn disc centres are uniform in: ``eve_area_xy``, else ``user_area_xy``
        (by default the strip between q0 and qF that the users are drawn in)."""
        return tuple(self.eve_area_xy) if self.eve_area_xy is not None else tuple(self.user_area_xy)

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
