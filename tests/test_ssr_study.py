"""The SSR study's grid and its targets table (studies/ssr)."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

STUDY = Path(__file__).resolve().parent.parent / "studies" / "ssr"


def _load(name):
    """A study script as a module of its own name (other studies also have a ``run.py``)."""
    spec = importlib.util.spec_from_file_location(f"ssr_study_{name}", STUDY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def study(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))        # make_docs puts its folder on sys.path
    return _load("run"), _load("make_docs")


def test_grid_has_the_membrane_baseline_at_three_v_hat(study):
    run, _ = study
    jobs = run.grid_jobs(run.GRIDS["constant_slope"])
    membrane = {(v, g) for reg, v, g in jobs if reg == "membrane"}
    assert {v for v, _ in membrane} == {0.25, 0.5, 0.75}
    assert all(sum(1 for v2, _ in membrane if v2 == v) >= 3 for v in (0.25, 0.5, 0.75))
    assert all(sum(1 for reg, _, _ in jobs if reg == r) >= 3 for r in ("m_ssr", "f_ssr"))
    assert ("none", None, 0.0) in jobs


def test_targets_table_picks_the_sparsest_run_within_the_loss_bound(study, tmp_path):
    _, make_docs = study
    rows = [("none", None, 0.0, 0.900, 0.30), ("m_ssr", None, 1e-3, 0.897, 0.11),
            ("m_ssr", None, 3e-3, 0.890, 0.05), ("membrane", 0.5, 1e-4, 0.899, 0.20)]
    pd.DataFrame(rows, columns=["regulariser", "v_hat", "gamma", "accuracy", "spikes_per_hidden_neuron"]).to_csv(
        tmp_path / "sweep.csv", index=False)
    table = make_docs.targets_table(tmp_path, relu_accuracy=0.895).set_index("method")
    assert table.loc["no SSR", "met"] == "yes"
    assert table.loc["M-SSR", "gamma"] == 1e-3                  # 3e-3 loses 1 pp: over the bound
    assert table.loc["M-SSR", "met"] == "yes"             # 0.37 x for -0.3 pp
    assert table.loc["membrane v̂ = 0.5 V_th", "met"] == "no"   # 0.67 x
