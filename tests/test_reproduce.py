"""The reproduction script of the paper's figures (quick mode) and its argument errors."""
from __future__ import annotations

import csv

from agents import reproduce


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


def test_reproduce_cai2019_quick_writes_figures_with_the_papers_trends(tmp_path):
    import csv

    assert reproduce.main(["cai2019", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("fig2", "fig3", "fig4"):
        assert (tmp_path / f"{name}.csv").is_file() and (tmp_path / f"{name}.png").stat().st_size > 10_000
    rows = list(csv.DictReader((tmp_path / "fig4.csv").open()))
    assert len(rows) == 4
    for r in rows:
        sl, a3, joint = (float(r[f"{k}_kbit_per_j"]) for k in ("straight_line", "algorithm3", "joint"))
        assert sl < a3 <= joint                       # every scheme improves on the one before
    by = {(float(r["radius_m"]), float(r["peak_power_w"])): float(r["algorithm3_kbit_per_j"]) for r in rows}
    assert by[(40.0, 10.0)] < by[(10.0, 10.0)] and by[(40.0, 1.0)] < by[(10.0, 1.0)]   # falls with r_E
    it = list(csv.DictReader((tmp_path / "fig2.csv").open()))
    ee = [float(r["algorithm3_kbit_per_j"]) for r in it if float(r["radius_m"]) == 10.0]
    assert all(b >= a for a, b in zip(ee, ee[1:])) and len(ee) <= 11
    traj = list(csv.DictReader((tmp_path / "fig3.csv").open()))
    assert {r["scheme"] for r in traj} == {"straight_line", "algorithm3", "joint"}
