"""Physical-layer secrecy against an eavesdropper known to lie in a disc (Cai et al. 2019, §2, §5, C7).

The eavesdropper is somewhere within ``radius`` of its estimated ground position. The worst case
for the legitimate link is the closest point of that disc to the UAV, so the minimum squared
UAV-eavesdropper distance is H^2 + ([||q - w_E|| - r_E]^+)^2 (closed form of the spec's §2). The SNR
leakage on a subcarrier carrying power p is Gamma = p beta0 / (N0 W d_E^2) (eq. (8)), and the
robust leakage constraint C7 (Gamma <= gamma_tol for every eavesdropper position) is the power cap
p <= gamma_tol N0 W d_E,min^2 / beta0. All functions broadcast over any batch shape.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def worst_case_eve_distance_sq_xy(dx: Any, dy: Any, radius_m: Any, altitude_m: float) -> Any:
    """H^2 + ([sqrt(dx^2 + dy^2) - r_E]^+)^2 for the horizontal offset (dx, dy) from UAV to w_E.

    Floats in give a float out (the single env's fast path); arrays broadcast.
    """
    gap = (dx * dx + dy * dy) ** 0.5 - radius_m
    gap = gap * (gap > 0.0)
    return altitude_m * altitude_m + gap * gap


def worst_case_eve_distance_sq(uav_xy: ArrayLike, eve_xy: ArrayLike, radius_m: ArrayLike,
                               altitude_m: float) -> NDArray[np.float64]:
    """Minimum squared 3-D distance (m^2) from the UAV to any point of the eavesdropper disc.

    ``uav_xy`` and ``eve_xy`` end in an axis of length 2 and broadcast; the result drops that axis.
    """
    diff = np.asarray(uav_xy, dtype=np.float64) - np.asarray(eve_xy, dtype=np.float64)
    return np.asarray(worst_case_eve_distance_sq_xy(diff[..., 0], diff[..., 1],
                                                    np.asarray(radius_m, dtype=np.float64), altitude_m))


def leakage_snr(power_w: ArrayLike, gamma0: float, eve_distance_sq: ArrayLike) -> Any:
    """SNR leaked to the eavesdropper, Gamma = p gamma0 / d_E^2, with gamma0 = beta0 / (N0 W) in m^2/W.

    Floats in give a float out; otherwise arrays broadcast.
    """
    if isinstance(power_w, float) and isinstance(eve_distance_sq, float):
        return power_w * gamma0 / eve_distance_sq
    return np.asarray(power_w, dtype=np.float64) * gamma0 / np.asarray(eve_distance_sq, dtype=np.float64)


def leakage_power_cap(gamma_tol: float, gamma0: float, eve_distance_sq: ArrayLike) -> Any:
    """Largest per-subcarrier power (W) whose leakage stays at gamma_tol: gamma_tol d_E^2 / gamma0.

    A float in gives a float out; otherwise arrays broadcast.
    """
    if isinstance(eve_distance_sq, float):
        return gamma_tol * eve_distance_sq / gamma0
    return gamma_tol * np.asarray(eve_distance_sq, dtype=np.float64) / gamma0


def worst_case_disc_distance_sq(qx: Any, qy: Any, discs: Any, altitude_m: float) -> Any:
    """Minimum over J eavesdropper discs of :func:`worst_case_eve_distance_sq_xy` (extension: the
    leakage constraint holds against every disc, so the binding one is the closest).

    ``discs``: a tuple of J (x, y, r) float triples with float ``qx``, ``qy`` (one env: a float
    out, the same arithmetic as J = 1 had), or an array (..., J, 3) with ``qx``, ``qy`` of the
    batch shape (...) or broadcasting to it (then (...) out).
    """
    if isinstance(discs, tuple) and isinstance(qx, float):
        if len(discs) == 1:
            ex, ey, r = discs[0]
            return worst_case_eve_distance_sq_xy(qx - ex, qy - ey, r, altitude_m)
        best = math.inf
        for ex, ey, r in discs:
            d = worst_case_eve_distance_sq_xy(qx - ex, qy - ey, r, altitude_m)
            if d < best:
                best = d
        return best
    return _disc_distances_sq(qx, qy, discs, altitude_m).min(axis=-1)


def _disc_distances_sq(qx: Any, qy: Any, discs: Any, altitude_m: float) -> NDArray[np.float64]:
    """Every disc's worst-case squared distance, (..., J), for an array of discs (..., J, 3)."""
    d = np.asarray(discs, dtype=np.float64)
    qx_, qy_ = np.asarray(qx, dtype=np.float64)[..., None], np.asarray(qy, dtype=np.float64)[..., None]
    return worst_case_eve_distance_sq_xy(qx_ - d[..., 0], qy_ - d[..., 1], d[..., 2], altitude_m)


def binding_disc(qx: Any, qy: Any, discs: Any, altitude_m: float) -> tuple[Any, Any]:
    """The disc whose worst-case point is closest to the UAV (the one that sets the leakage cap;
    the first of equals) and that squared distance, :func:`worst_case_disc_distance_sq`:
    (int, float) for one env (a tuple of discs, float ``qx``, ``qy``), (int array, float array) of
    the batch shape for an array of discs (..., J, 3)."""
    if isinstance(discs, tuple) and isinstance(qx, float):
        dist = [worst_case_eve_distance_sq_xy(qx - ex, qy - ey, r, altitude_m) for ex, ey, r in discs]
        best = min(dist)
        return dist.index(best), best
    dist = _disc_distances_sq(qx, qy, discs, altitude_m)
    j = np.argmin(dist, axis=-1)
    return j, np.take_along_axis(dist, j[..., None], axis=-1)[..., 0]


def sample_in_discs(rng: np.random.Generator, discs: ArrayLike) -> NDArray[np.float64]:
    """One point drawn uniformly in each disc (..., J, 3) -> (..., J, 2): an eavesdropper's true
    position when only its disc is known (radius r sqrt(u), angle 2 pi u')."""
    d = np.asarray(discs, dtype=np.float64)
    u = rng.random(d.shape[:-1] + (2,))
    rad = d[..., 2] * np.sqrt(u[..., 0])
    ang = 2.0 * math.pi * u[..., 1]
    return np.stack([d[..., 0] + rad * np.cos(ang), d[..., 1] + rad * np.sin(ang)], axis=-1)
