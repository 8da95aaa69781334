"""Rotary-wing UAV propulsion power (Zeng, Xu, Zhang 2019, as used by Cai et al. 2019 eq. (4)).

P_fly(V) = P0 (1 + 3 V^2 / U_tip^2) + P_I (sqrt(1 + V^4 / (4 v0^4)) - V^2 / (2 v0^2))^(1/2)
           + 1/2 d0 rho s A V^3,

with U_tip = Omega R (Table I of Cai et al. gives Omega and R, not U_tip). The hover constants
follow from the blade-element model: P0 = delta/8 rho s A Omega^3 R^3, P_I = (1 + k) W^1.5 /
sqrt(2 rho A) and v0 = sqrt(W / (2 rho A)). All functions broadcast over any batch shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class RotorParams:
    """Constants of the rotary-wing power model (SI units)."""

    profile_power_w: float     # P0, blade profile power in hover
    induced_power_w: float     # P_I, induced power in hover
    tip_speed_mps: float       # U_tip = Omega R
    induced_velocity_mps: float  # v0, mean rotor induced velocity in hover
    fuselage_drag_ratio: float   # d0
    air_density: float           # rho, kg/m^3
    solidity: float              # s (rotor solidity; s_r in the spec)
    disc_area_m2: float          # A

    @property
    def parasite_coeff(self) -> float:
        """1/2 d0 rho s A, the coefficient of V^3."""
        return 0.5 * self.fuselage_drag_ratio * self.air_density * self.solidity * self.disc_area_m2


def hover_constants(profile_drag: float, induced_correction: float, weight_n: float,
                    air_density: float, solidity: float, disc_area_m2: float,
                    blade_speed_rad_s: float, rotor_radius_m: float) -> tuple[float, float, float]:
    """(P0, P_I, v0) from delta, k, W, rho, s, A, Omega and R (Zeng et al. 2019, eq. (64)-(65))."""
    p0 = profile_drag / 8.0 * air_density * solidity * disc_area_m2 * \
        blade_speed_rad_s ** 3 * rotor_radius_m ** 3
    pi = (1.0 + induced_correction) * weight_n ** 1.5 / math.sqrt(2.0 * air_density * disc_area_m2)
    v0 = math.sqrt(weight_n / (2.0 * air_density * disc_area_m2))
    return p0, pi, v0


#: Table I of Cai et al. 2019 (Omega = 400 rad/s, R = 0.5 m, so U_tip = 200 m/s); the printed
#: P0 = 580.65 W, P_I = 790.67 W and v0 = 7.2 m/s follow from delta = 0.012, k = 0.1, W = 100 N.
CAI2019_TABLE_I = RotorParams(profile_power_w=580.65, induced_power_w=790.67, tip_speed_mps=400.0 * 0.5,
                              induced_velocity_mps=7.2, fuselage_drag_ratio=0.3, air_density=1.225,
                              solidity=0.05, disc_area_m2=0.79)

#: The other widely used set (Zeng, Xu, Zhang 2019, Table I: W = 20 N, R = 0.4 m, Omega = 300 rad/s).
ZENG2019 = RotorParams(profile_power_w=79.86, induced_power_w=88.63, tip_speed_mps=120.0,
                       induced_velocity_mps=4.03, fuselage_drag_ratio=0.6, air_density=1.225,
                       solidity=0.05, disc_area_m2=0.503)

ROTOR_PRESETS: dict[str, RotorParams] = {"cai2019": CAI2019_TABLE_I, "zeng2019": ZENG2019}


def flight_power(speed_mps: ArrayLike, rotor: RotorParams = CAI2019_TABLE_I) -> Any:
    """Propulsion power in W at horizontal speed ``speed_mps`` (eq. (4)); any shape.

    A Python float in gives a Python float out (the single env's fast path; same formula).
    """
    v = speed_mps if isinstance(speed_mps, float) else np.asarray(speed_mps, dtype=np.float64)
    v2 = v * v
    blade = rotor.profile_power_w * (1.0 + 3.0 * v2 / rotor.tip_speed_mps ** 2)
    induced = rotor.induced_power_w * induced_slack(v, rotor)
    parasite = rotor.parasite_coeff * v2 * v
    return blade + induced + parasite


def induced_slack(speed_mps: ArrayLike, rotor: RotorParams = CAI2019_TABLE_I) -> Any:
    """chi(V) = (sqrt(1 + V^4/(4 v0^4)) - V^2/(2 v0^2))^(1/2), the root of chi^-2 = chi^2 + V^2/v0^2:
    the induced-power factor of eq. (4) and the slack variable of the flight-power SCA (spec eqs.
    (47)-(50)). A Python float in gives a Python float out."""
    v = speed_mps if isinstance(speed_mps, float) else np.asarray(speed_mps, dtype=np.float64)
    v2 = v * v
    v0sq = rotor.induced_velocity_mps ** 2
    return ((1.0 + v2 * v2 / (4.0 * v0sq * v0sq)) ** 0.5 - v2 / (2.0 * v0sq)) ** 0.5
