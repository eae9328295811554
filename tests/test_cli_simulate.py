"""``neurocode simulate`` and ``neurocode doctor`` end to end (runtime device)."""

import json

import numpy as np
import pytest

from neurocode.cli import main
from neurocode.cli.doctor import checks


def test_simulate_card_writes_spikes_states_summary_and_raster(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["simulate", "lif", "--duration", "200*ms", "--size", "60", "--seed", "2",
                 "--record", "v,I_syn", "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    spikes = np.load(out / "spikes.npz")
    states = np.load(out / "states.npz")
    net = summary["populations"]["net"]
    assert net["spike_count"] == spikes["net/indices"].size > 0
    assert net["mean_rate_hz"] == pytest.approx(spikes["net/indices"].size / 60 / 0.2)
    assert summary["device"] == "runtime" and summary["duration_s"] == pytest.approx(0.2)
    assert states["net/v"].shape == (2000, 60) and states["t"].shape == (2000,)
    assert (out / "raster.png").stat().st_size > 0 and (out / "raster.csv").is_file()
    assert "spikes" in capsys.readouterr().out


def test_simulate_spec_file(tmp_path):
    from neurocode.presets import default_network

    spec = default_network("izhikevich", size=20, duration=0.1, seed=0)
    spec.save(tmp_path / "net.npz")
    assert main(["simulate", str(tmp_path / "net.npz"), "--duration", "0.1", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert set(summary["populations"]) == {"net", "input"}


def test_simulate_errors_are_reported(tmp_path, capsys):
    assert main(["simulate", "lif", "--duration", "5*mV", "--out", str(tmp_path)]) == 2
    assert "is not a time" in capsys.readouterr().err
    assert main(["simulate", "lif", "--duration", "0.01", "--record", "u", "--out", str(tmp_path)]) == 2
    assert "has no variable(s) ['u']" in capsys.readouterr().err
    assert main(["simulate", "nosuchcard", "--duration", "0.01", "--out", str(tmp_path)]) == 2
    assert "no card of that name" in capsys.readouterr().err


def test_doctor_reports_each_component(capsys):
    names = [name for name, _, _ in checks()]
    for expected in ("brian2", "brian2cuda", "torch", "nvcc", "curand", "GPU", "fashion-mnist", "espeak-ng",
                     "device cuda_standalone"):
        assert expected in names
    assert main(["doctor"]) == 0
    assert "device runtime" in capsys.readouterr().out
