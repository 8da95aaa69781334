"""Validation of scenario dataclasses from field metadata.

A field declares its rule with ``field(default=..., metadata=bounds(lo, hi, ...))``; ``validate``
checks every field of a dataclass instance and raises ``ValueError`` naming the field and the allowed
range. Used by every scenario preset so that configuration errors read the same everywhere.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Mapping, TypeVar

import numpy as np

T = TypeVar("T")


def bounds(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, integer: bool = False, unit: str = "", label: str = "",
           optional: bool = False) -> dict[str, Any]:
    """Field metadata for a real (or integer) number in [lo, hi] (open ends where asked; None too
    where ``optional``: "the default for the case"); ``label`` names the quantity in words for plots
    and tables (:func:`field_label`)."""
    return {"kind": "number", "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "integer": integer, "unit": unit, "label": label, "optional": optional}


def choice(*options: str, label: str = "") -> dict[str, Any]:
    """Field metadata for a string taking one of ``options``."""
    return {"kind": "choice", "options": options, "label": label}


def flag(optional: bool = False, label: str = "") -> dict[str, Any]:
    """Field metadata for a boolean (or None, where ``optional``: "the default for the case")."""
    return {"kind": "flag", "optional": optional, "label": label}


def points(count: int | None = None, lo: float | None = None, hi: float | None = None,
           unit: str = "m", label: str = "", optional: bool = False) -> dict[str, Any]:
    """Field metadata for a sequence of finite (x, y) points (``count`` of them if given; None too
    where ``optional``)."""
    return {"kind": "points", "count": count, "lo": lo, "hi": hi, "unit": unit, "label": label,
            "optional": optional}


def point(lo: float | None = None, hi: float | None = None, unit: str = "m", label: str = "",
          optional: bool = False, what: str = "an (x, y) pair") -> dict[str, Any]:
    """Field metadata for one finite (x, y) pair (None too where ``optional``); ``what`` names the
    pair in error messages (e.g. "a (smallest, largest) pair")."""
    return {"kind": "point", "lo": lo, "hi": hi, "unit": unit, "label": label, "optional": optional, "what": what}


def discs(lo: float | None = None, hi: float | None = None, r_max: float | None = None, unit: str = "m",
          label: str = "", optional: bool = False) -> dict[str, Any]:
    """Field metadata for a non-empty sequence of discs (x, y, radius): a finite centre in [lo, hi]
    and a radius in [0, r_max] (None too where ``optional``)."""
    return {"kind": "discs", "lo": lo, "hi": hi, "r_max": r_max, "unit": unit, "label": label,
            "optional": optional}


def field_label(scenario: Any, name: str) -> str:
    """A scenario field in words with its unit, e.g. ``"eavesdropper radius (m)"`` for
    ``eve_radius_m``, from the field's metadata; the name itself for an unknown field or one
    without a label."""
    for f in dataclasses.fields(scenario):
        if f.name == name and f.metadata.get("label"):
            unit = f.metadata.get("unit") or ""
            return f"{f.metadata['label']} ({unit})" if unit else str(f.metadata["label"])
    return name


def as_real(value: Any) -> float | None:
    """``value`` as a float when it is a real number or a string Python reads as one (``"1e2"``,
    ``"1.0e9"``: YAML 1.1, and so ``yaml.safe_load``, reads an exponent without a dot or a sign as a
    string); None for anything else (booleans included)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _as_point(name: str, value: Any, m: Mapping[str, Any]) -> tuple[float, float]:
    lo = "-inf" if m["lo"] is None else repr(m["lo"])
    hi = "inf" if m["hi"] is None else repr(m["hi"])
    pair = m.get("what") or "an (x, y) pair"
    allowed = f"{pair} of finite numbers in [{lo}, {hi}] {m['unit']}".rstrip()
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2:
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
    out = []
    for item in value:
        v = as_real(item)
        if v is None or not math.isfinite(v):
            raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
        if (m["lo"] is not None and v < m["lo"]) or (m["hi"] is not None and v > m["hi"]):
            raise ValueError(f"{name}={value!r} is out of range: expected {allowed}")
        out.append(float(v))
    return out[0], out[1]


def _as_discs(name: str, value: Any, m: Mapping[str, Any]) -> tuple[tuple[float, float, float], ...]:
    r_hi = "inf" if m["r_max"] is None else repr(m["r_max"])
    allowed = f"a non-empty list of (x, y, radius) triples, radius in [0, {r_hi}] {m['unit']}".rstrip()
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
    out = []
    for i, disc in enumerate(value):
        if not isinstance(disc, (list, tuple, np.ndarray)) or len(disc) != 3:
            raise ValueError(f"{name}[{i}]={disc!r} is invalid: expected an (x, y, radius) triple")
        x, y = _as_point(f"{name}[{i}] centre", disc[:2], m)
        r = as_real(disc[2])
        if r is None or not math.isfinite(r):
            raise ValueError(f"{name}[{i}] radius={disc[2]!r} is invalid: expected a finite number in "
                             f"[0, {r_hi}] {m['unit']}")
        if r < 0 or (m["r_max"] is not None and r > m["r_max"]):
            raise ValueError(f"{name}[{i}] radius={disc[2]!r} is out of range: expected a number in "
                             f"[0, {r_hi}] {m['unit']}")
        out.append((x, y, float(r)))
    return tuple(out)


def _range_text(m: Mapping[str, Any]) -> str:
    lo = "-inf" if m["lo"] is None else repr(m["lo"])
    hi = "inf" if m["hi"] is None else repr(m["hi"])
    left = "(" if (m["lo_open"] or m["lo"] is None) else "["
    right = ")" if (m["hi_open"] or m["hi"] is None) else "]"
    kind = "an integer" if m["integer"] else "a finite number"
    unit = f" {m['unit']}" if m["unit"] else ""
    return f"{kind} in {left}{lo}, {hi}{right}{unit}"


def check_value(name: str, value: Any, m: Mapping[str, Any]) -> Any:
    """Check one value against its metadata; return it normalised (int or float)."""
    if m["kind"] == "flag":
        if value is None and m.get("optional"):
            return None
        if not isinstance(value, (bool, np.bool_)):
            extra = ", or null for the default" if m.get("optional") else ""
            raise ValueError(f"{name}={value!r} is invalid: expected true or false{extra}")
        return bool(value)
    if value is None and m.get("optional") and m["kind"] in ("point", "points", "discs"):
        return None
    if m["kind"] == "point":
        return _as_point(name, value, m)
    if m["kind"] == "discs":
        return _as_discs(name, value, m)
    if m["kind"] == "points":
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise ValueError(f"{name}={value!r} is invalid: expected a list of (x, y) points")
        pts = tuple(_as_point(f"{name}[{i}]", v, m) for i, v in enumerate(value))
        if m["count"] is not None and len(pts) != m["count"]:
            raise ValueError(f"{name} has {len(pts)} points, expected {m['count']}")
        return pts
    if m["kind"] == "choice":
        if not isinstance(value, str) or value not in m["options"]:
            raise ValueError(f"{name}={value!r} is invalid: expected one of {list(m['options'])}")
        return value
    if value is None and m.get("optional"):
        return None
    allowed = _range_text(m) + (", or null for the default" if m.get("optional") else "")
    real = as_real(value)
    if real is None:
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
    x = real
    if not math.isfinite(x):
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
    if m["integer"]:
        if x != int(x):
            raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")
        x = int(x)
    lo, hi = m["lo"], m["hi"]
    if lo is not None and (x < lo or (m["lo_open"] and x == lo)):
        raise ValueError(f"{name}={value!r} is out of range: expected {allowed}")
    if hi is not None and (x > hi or (m["hi_open"] and x == hi)):
        raise ValueError(f"{name}={value!r} is out of range: expected {allowed}")
    return x


def validate(obj: Any) -> None:
    """Validate (and normalise in place) every field of a frozen dataclass carrying metadata."""
    for f in dataclasses.fields(obj):
        if "kind" not in f.metadata:
            continue
        value = check_value(f.name, getattr(obj, f.name), f.metadata)
        object.__setattr__(obj, f.name, value)


def override(base: T, overrides: Mapping[str, Any]) -> T:
    """``dataclasses.replace`` that rejects unknown keywords with a ValueError listing the known ones."""
    names = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown scenario keyword(s) {unknown} for {type(base).__name__}; "
                         f"allowed: {sorted(names)}")
    return dataclasses.replace(base, **overrides)  # type: ignore[type-var]
