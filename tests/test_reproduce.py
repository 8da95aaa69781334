"""The reproduction script of the paper's figures (quick mode) and its argument errors."""
from __future__ import annotations

import csv

from baselines import reproduce


def test_reproduce_yang2019_quick_writes_figures(tmp_path):
    assert reproduce.main(["yang2019", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("fig4.csv", "fig5.csv", "fig4.png", "fig5.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader((tmp_path / "fig4.csv").open()))
    by = {(float(r["p_max_dbm"]), r["curve"]): float(r["mean_mbps"]) for r in rows}
    powers = sorted({p for p, _ in by})
    assert powers[0] == 0 and powers[-1] == 40
    for p in powers:
        # same drops for every curve: EXH >= Algorithm 1 >= TDMA at every power
        curves = {c: v for (pp, c), v in by.items() if pp == p}
        exh, a1, tdma = (next(v for c, v in curves.items() if key in c.lower())
                         for key in ("exh", "algorithm", "tdma"))
        assert exh >= a1 >= tdma > 0
    a1_curve = [next(v for (pp, c), v in by.items() if pp == p and "algorithm" in c.lower())
                for p in powers]
    assert all(b > a for a, b in zip(a1_curve, a1_curve[1:])), "rate must grow with P_max"


def test_reproduce_rejects_bad_arguments(capsys):
    assert reproduce.main(["nosuchpaper"]) == 2
    assert reproduce.main(["yang2019", "--drops", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all("error" in line for line in err)
