"""The trainer: loss goes down, kill/resume equals an uninterrupted run, configs are checked."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocode.cli import main
from neurocode.errors import ConfigError
from neurocode.spec import NetworkSpec
from neurocode.training.loop import fit
from neurocode.training.ttfs import load_config, train_ttfs

TINY = {"data": {"name": "mnist5k", "train_subset": 256, "test_subset": 200},
        "network": {"sizes": [784, 20, 10], "init_mean": 3.0},
        "loss": {"tau_soft": 0.3},
        "train": {"epochs": 2, "batch_size": 32, "lr": 3e-3, "lr_decay": 0.5, "checkpoint_every": 3,
                  "eval_batch": 200}}


def test_training_reduces_the_loss_and_writes_the_run_folder(tmp_path):
    history = train_ttfs(TINY, tmp_path / "run", progress=False)
    assert len(history) == 2
    assert history[1]["train_ce"] < history[0]["train_ce"]
    for name in ("config.toml", "checkpoint.pt", "metrics.json", "metrics.csv", "network.npz", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    spec = NetworkSpec.load(tmp_path / "run" / "network.npz")
    assert spec.populations["hidden1"].size == 20 and spec.inputs["in"].size == 784
    assert spec.metadata["dataset"] == "mnist5k"          # `neurocode validate` needs no config
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())[1]["epoch"] == 2


def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path):
    full = train_ttfs(TINY, tmp_path / "full", progress=False)
    # "kill" twice: mid-epoch (after 5 steps, checkpoint at step 3 is overwritten at 5) and again
    assert train_ttfs(TINY, tmp_path / "cut", progress=False, stop_after_steps=5) == []
    part = train_ttfs(TINY, tmp_path / "cut", progress=False, stop_after_steps=6)
    assert len(part) == 1
    resumed = train_ttfs(TINY, tmp_path / "cut", progress=False)
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in full]
    assert [r["lr"] for r in resumed] == pytest.approx([3e-3, 1.5e-3])       # decay survives the kills
    assert resumed[-1]["train_loss"] == pytest.approx(full[-1]["train_loss"], rel=1e-6)
    a = NetworkSpec.load(tmp_path / "full" / "network.npz").projections[0].weights
    b = NetworkSpec.load(tmp_path / "cut" / "network.npz").projections[0].weights
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_fit_is_generic_over_models(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = (x @ torch.tensor([1.0, -2.0, 0.5]) > 0).long()
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)

    def loss_fn(m, xb, yb):
        loss = torch.nn.functional.cross_entropy(m(xb), yb)
        return loss, {}

    hist = fit(model, loss_fn, (x, y), lambda m: {"acc": float((m(x).argmax(1) == y).float().mean())},
               tmp_path, epochs=3, optimizer=opt, batch_size=16, progress=False)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] and hist[-1]["acc"] > 0.8


def test_bad_configs_are_named(tmp_path):
    with pytest.raises(ConfigError, match="config: unknown key 'optimiser'"):
        load_config({"optimiser": "adam"})
    with pytest.raises(ConfigError, match=r"config: unknown key 'network.widths'; known: \['network.init_mean'"):
        load_config({"network": {"widths": [1]}})
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="unknown key 'loss.gamma2'"):
        train_ttfs({**TINY, "loss": {"gamma2": 1.0}}, tmp_path / "bad", progress=False)
    one = {**TINY, "train": {**TINY["train"], "epochs": 1}}
    assert len(train_ttfs(one, tmp_path / "r", progress=False)) == 1
    with pytest.raises(ValueError, match="different config"):
        train_ttfs({**one, "loss": {"tau_soft": 0.5}}, tmp_path / "r", progress=False)
    assert len(train_ttfs(TINY, tmp_path / "r", progress=False)) == 2     # more epochs: resumes
    saved = tmp_path / "r" / "config.toml"                               # written before `mssr` existed
    saved.write_text(saved.read_text().replace('mssr = "signed"\n', ""))
    assert len(train_ttfs({**TINY, "train": {**TINY["train"], "epochs": 3}}, tmp_path / "r", progress=False)) == 3
    with pytest.raises(ValueError, match="different config"):
        train_ttfs({**TINY, "loss": {**TINY["loss"], "mssr": "rectified"}}, tmp_path / "r", progress=False)


def test_cli_train_runs_and_reports(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nname = "mnist5k"\ntrain_subset = 64\ntest_subset = 50\n'
                   '[network]\nsizes = [784, 8, 10]\n[train]\nepochs = 1\nbatch_size = 32\n')
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet", "--set", "loss.regulariser=m_ssr",
                 "--set", "loss.gamma=0.001"]) == 0
    assert "spikes per hidden neuron" in capsys.readouterr().out
    assert 'regulariser = "m_ssr"' in (tmp_path / "run" / "config.toml").read_text()
    assert main(["train", str(cfg), "--out", str(tmp_path / "x"), "--set", "gamma"]) == 2


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[1] / "studies" / "ssr").glob("*.toml")),
                         ids=lambda p: p.name)
def test_study_configs_load_and_build(config):
    from neurocode.training.ttfs import build_ttfs

    cfg = load_config(config)
    net, loss, _ = build_ttfs(cfg)
    assert net.sizes[0] == 784 and net.sizes[-1] == 10
    assert net.neuron == cfg["network"]["neuron"] and loss.regulariser == cfg["loss"]["regulariser"]
