"""Paper presets and validated configuration loading."""
from __future__ import annotations

from typing import Any

from secure_env.scenarios.validation import override
from secure_env.scenarios.cai2019 import UavOfdmaScenario
from secure_env.scenarios.quantum_uav import QuantumUavScenario
from secure_env.scenarios.yang2019 import QkdNomaScenario

PRESETS: dict[str, type] = {"yang2019": QkdNomaScenario, "cai2019": UavOfdmaScenario,
                            "quantum_uav": QuantumUavScenario}


def make_scenario(preset: str | Any = "yang2019", default: str = "yang2019", **overrides: Any) -> Any:
    """Build a scenario from a preset name, a scenario instance or a dict, plus keyword overrides.

    A dict is applied on top of the ``default`` preset. Unknown presets or keywords and
    out-of-range values raise ``ValueError`` naming the field.
    """
    return scenario_from(preset, default, overrides)


def scenario_from(preset: str | Any, default: str, overrides: dict[str, Any]) -> Any:
    """:func:`make_scenario` with the overrides as one dict, so that no override can collide with
    its own parameters (an env keyword named ``default`` or ``preset`` is then an unknown scenario
    keyword, a ``ValueError`` naming it, not a ``TypeError``): what the envs call."""
    if isinstance(preset, dict):
        overrides = {**preset, **overrides}
        preset = default
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown scenario preset {preset!r}; allowed: {sorted(PRESETS)}")
        base = PRESETS[preset]()
    else:
        base = preset
    if overrides.get("num_users_range") is not None and "num_users" not in overrides:
        # the spaces are sized for the most users: num_users follows the range's top unless given
        rng = overrides["num_users_range"]
        if isinstance(rng, (list, tuple)) and len(rng) == 2 and isinstance(rng[1], (int, float)) \
                and not isinstance(rng[1], bool) and 1 <= rng[1] <= 64 and rng[1] == int(rng[1]):
            overrides = {**overrides, "num_users": int(rng[1])}
    return override(base, overrides) if overrides else base


__all__ = ["PRESETS", "QkdNomaScenario", "QuantumUavScenario", "UavOfdmaScenario", "make_scenario", "scenario_from"]
