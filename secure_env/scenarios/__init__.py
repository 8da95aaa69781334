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
    if isinstance(preset, dict):
        overrides = {**preset, **overrides}
        preset = default
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown scenario preset {preset!r}; allowed: {sorted(PRESETS)}")
        base = PRESETS[preset]()
    else:
        base = preset
    return override(base, overrides) if overrides else base


__all__ = ["PRESETS", "QkdNomaScenario", "QuantumUavScenario", "UavOfdmaScenario", "make_scenario"]
