"""Quantum key distribution with non-maximally entangled states (Yang et al. 2019, Sec. II-A).

eps is the probability that the base station measures in the pi/4 basis ("basis probability").
A = 4 |alpha|^2 |beta|^2 = 4 (|alpha||beta|)^2 is the error-rate constant. Pure, broadcasting.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Guard on the photon-count ceiling: 8m/eps^2 evaluated at eps = sqrt(8m/N) can come out as
# N (1 + 1e-16) in floating point, and a plain ceil would then return N + 1. A value within a few
# units in the last place of an integer is taken as that integer (an absolute guard: a relative one
# would subtract whole photons once N reaches about 1e12).
_CEIL_ULPS = 4.0


def error_constant(alpha_beta: ArrayLike) -> NDArray[np.float64]:
    """A = 4 |alpha|^2 |beta|^2 from the product |alpha||beta| in (0, 1/2]."""
    ab = np.asarray(alpha_beta, dtype=np.float64)
    return 4.0 * ab * ab


def error_rate_general(
    eps: ArrayLike,
    alpha_sq: ArrayLike,
    beta_sq: ArrayLike,
    p1: ArrayLike,
    p2: ArrayLike,
    p3: ArrayLike,
) -> NDArray[np.float64]:
    """Average error rate under a biased eavesdropping attack, paper eq. (3).

    The eavesdropper measures in bases rotated by 0, theta and -theta with probabilities
    p1, p2, p3. alpha_sq = |alpha|^2, beta_sq = |beta|^2 (summing to 1).
    """
    e = np.asarray(eps, dtype=np.float64)
    a2 = np.asarray(alpha_sq, dtype=np.float64)
    b2 = np.asarray(beta_sq, dtype=np.float64)
    p23 = np.asarray(p2, dtype=np.float64) + np.asarray(p3, dtype=np.float64)
    om = (1.0 - e) ** 2
    num = 2.0 * a2 * b2 * (2.0 * om * p23 + e * e * np.asarray(p1, dtype=np.float64)
                           + 2.0 * e * e * (a2 - b2) * p23)
    return num / (om + e * e / 2.0)


def error_rate(eps: ArrayLike, alpha_beta: ArrayLike) -> NDArray[np.float64]:
    """Error rate with the eavesdropper on the rectilinear basis (p1 = 1), paper eq. (4).

    e = A eps^2 / (2 (1 - eps)^2 + eps^2); increasing in eps, e(0) = 0, e(1) = A.
    """
    e = np.asarray(eps, dtype=np.float64)
    # a float |alpha||beta| (every env and planner): A in plain floats, the same product
    a = 4.0 * alpha_beta * alpha_beta if type(alpha_beta) is float else error_constant(alpha_beta)
    return a * e * e / (2.0 * (1.0 - e) ** 2 + e * e)


def basis_prob_for_error_rate(err: ArrayLike, alpha_beta: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`error_rate`: the eps whose error rate is ``err``.

    ((1 - eps)/eps)^2 = (A - err) / (2 err), so eps = 1 / (1 + sqrt((A - err)/(2 err))).
    Returns 1 where err >= A (every eps is allowed; the largest costs the least time) and 0 where
    err <= 0 (no eps > 0 achieves it: infinite QKD time).
    """
    err = np.asarray(err, dtype=np.float64)
    a = error_constant(alpha_beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a - err) / (2.0 * err)
        eps = 1.0 / (1.0 + np.sqrt(np.maximum(ratio, 0.0)))
    eps = np.where(err >= a, 1.0, eps)
    return np.where(err <= 0.0, 0.0, eps)


def photon_count(eps: ArrayLike, photons_m: ArrayLike) -> NDArray[np.float64]:
    """N = ceil(8 m / eps^2), the fewest entangled pairs meeting (7); inf for eps = 0."""
    e = np.asarray(eps, dtype=np.float64)
    with np.errstate(divide="ignore"):
        x = 8.0 * np.asarray(photons_m, dtype=np.float64) / (e * e)
    nearest = np.round(x)
    with np.errstate(invalid="ignore"):
        on_integer = np.abs(x - nearest) <= _CEIL_ULPS * np.spacing(np.abs(x))
    return np.where(on_integer, nearest, np.ceil(x))


def basis_prob_for_photons(n: ArrayLike, photons_m: ArrayLike) -> NDArray[np.float64]:
    """The smallest eps with photon_count(eps) == n (n >= 8m): eps = sqrt(8 m / n), the lowest error
    rate for that count (a larger eps, up to sqrt(8 m / (n - 1)), needs the same n photons)."""
    eight_m = 8.0 * photons_m if type(photons_m) is float else 8.0 * np.asarray(photons_m, dtype=np.float64)
    return np.sqrt(eight_m / np.asarray(n, dtype=np.float64))


def qkd_time(eps: ArrayLike, distance_m: ArrayLike, photons_m: ArrayLike,
             light_speed_mps: float) -> NDArray[np.float64]:
    """QKD period t = (d / c) ceil(8 m / eps^2), paper eq. (8): one photon in flight at a time."""
    return np.asarray(distance_m, dtype=np.float64) / light_speed_mps * photon_count(eps, photons_m)
