"""Shared fixtures of the test suite."""
from __future__ import annotations

import pytest
from cvxpy.reductions.solvers.solving_chain import SolvingChain


@pytest.fixture
def compiles(monkeypatch):
    """Ids of the cvxpy problems compiled (a solving chain applied to them) while the test runs."""
    seen: list[int] = []
    apply = SolvingChain.apply

    def counting_apply(self, problem, *args, **kwargs):
        seen.append(id(problem))
        return apply(self, problem, *args, **kwargs)

    monkeypatch.setattr(SolvingChain, "apply", counting_apply)
    return seen
