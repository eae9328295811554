"""The LNP study's statistics and checkpoint keys (studies/lnp/)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies" / "lnp"))


def test_paired_tests_against_hand_computed_values():
    from make_docs import tests
    x = np.array([0.5, 1.0, 1.5, 2.0, 2.5])                     # all positive: exact Wilcoxon p = 2 / 2**5
    t = tests(x)
    assert t["w_p"] == pytest.approx(0.0625)
    d_z = x.mean() / x.std(ddof=1)                                # t = d_z sqrt(n), 4 degrees of freedom
    assert t["d_z"] == pytest.approx(d_z)
    from scipy.stats import t as student
    assert t["t_p"] == pytest.approx(2 * student.sf(d_z * np.sqrt(5), 4))
    assert tests(np.array([1.0, -1.0, 2.0, -2.0, 0.5]))["w_p"] > 0.5
    same = tests(np.full(5, 1 / 240) + np.array([0, 1e-16, 0, -1e-16, 0]))     # equal up to rounding
    assert np.isnan(same["t_p"]) and np.isnan(same["d_z"])


def test_verdict_names_both_baselines_and_the_paired_tests():
    from make_docs import paired, verdict
    rows = []
    for seed in range(5):
        for method, nrmse, acc in (("lnp", 0.5, 0.80 + 0.01 * seed), ("random", 0.6 + 0.01 * seed, 0.80),
                                   ("activity", 0.5 + 0.001 * seed, 0.85)):
            rows.append({"network": "hrsnn", "seed": seed, "method": method, "target_sparsity": 0.9,
                         "lorenz_nrmse": nrmse, "keyword_accuracy": acc})
    m = pd.DataFrame(rows)
    text = verdict(m)
    assert "HRSNN vs random, 90 %" in text and "HRSNN vs activity, 90 %" in text
    assert "LNP trails activity on keywords" in text and "Wilcoxon p = 0.062" in text
    table = paired(m)
    assert list(table["baseline"]) == ["random", "activity"]
    assert table.loc[0, "NRMSE: LNP"] == "better" and table.loc[1, "accuracy: LNP"] == "worse"


def test_job_keys_leave_out_the_grid_so_a_larger_grid_reuses_rows(tmp_path):
    from run import job, job_config

    from neurocode.cluster import config_key
    calls = []

    def fake(cfg, data):
        calls.append(cfg["seed"])
        return {"metrics": {"seed": cfg["seed"]}}

    import run
    cfg = {"network": "hrsnn", "seed": 0, "method": "dense", "sparsity": 0.0}
    old = run.JOBS["dense"]
    run.JOBS["dense"] = fake
    try:
        first = job(cfg, tmp_path, None)
        again = job(dict(cfg), tmp_path, None)
    finally:
        run.JOBS["dense"] = old
    assert calls == [0] and first == again                        # the second call read the row back
    assert (tmp_path / f"{config_key(cfg)}.json").is_file()
    study = {"network": "hrsnn", "w_exc": 0.05e-9, "seeds": [0, 1], "sparsities": [0.9], "preset": "large"}
    more = {**study, "seeds": [0, 1, 2, 3, 4], "sparsities": [0.9, 0.75]}
    assert config_key(job_config(study, 1, "lnp", 0.9)) == config_key(job_config(more, 1, "lnp", 0.9))
    assert config_key(job_config(study, 1, "lnp", 0.9)) != config_key(job_config({**study, "ei": "mixed"}, 1, "lnp",
                                                                                 0.9))
