"""Radio channel: unit conversions, path loss and Rayleigh block fading.

All functions are pure and broadcast over any leading batch axes.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def db_to_linear(db: ArrayLike) -> NDArray[np.float64]:
    """Power ratio in dB -> linear ratio."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def linear_to_db(x: ArrayLike) -> NDArray[np.float64]:
    """Linear power ratio -> dB."""
    return 10.0 * np.log10(np.asarray(x, dtype=np.float64))


def dbm_to_watt(dbm: ArrayLike) -> NDArray[np.float64]:
    """Power in dBm -> W (0 dBm = 1 mW)."""
    return db_to_linear(dbm) * 1e-3


def watt_to_dbm(w: ArrayLike) -> NDArray[np.float64]:
    """Power in W -> dBm."""
    return linear_to_db(np.asarray(w, dtype=np.float64) * 1e3)


def path_loss_db(distance_m: ArrayLike) -> NDArray[np.float64]:
    """Large-scale path loss of Yang et al. 2019, L(d) = 17 + 30 log10(d) dB, with d in metres.

    The paper does not give the unit of d. Metres are used because with kilometres the median
    SNR at P_max = 30 dBm over -104 dBm of noise would be about 128 dB, which is not physical;
    with metres it is about 38 dB (see docs/models/qkd_noma.md).
    """
    return 17.0 + 30.0 * np.log10(np.asarray(distance_m, dtype=np.float64))


def rayleigh_power(rng: np.random.Generator, shape: int | tuple[int, ...]) -> NDArray[np.float64]:
    """Small-scale Rayleigh fading power gains, i.i.d. Exp(1) (unit mean)."""
    return rng.exponential(1.0, size=shape)


def channel_gain(distance_m: ArrayLike, fading: ArrayLike) -> NDArray[np.float64]:
    """Linear power gain h = fading * 10^(-L(d)/10), so that SNR = h p / sigma^2 with p in W."""
    return np.asarray(fading, dtype=np.float64) * db_to_linear(-path_loss_db(distance_m))
