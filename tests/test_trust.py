"""A file never runs code, and impossible input never runs: payloads, value checks, the command line."""

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocode.brian.builder import initial_values
from neurocode.cards import card_from_string, load_card
from neurocode.cli import main
from neurocode.errors import (ConfigError, DatasetError, ModelCardError, NetworkSpecError, NeurocodeError)
from neurocode.io import check_output_dir, write_text
from neurocode.spec import NetworkSpec
from neurocode.training.loop import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
LIF = load_card("lif").text
#: How the evaluator refuses the payloads: the construct it met first.
REFUSED = "(is not allowed|only calls of named functions are allowed)"


def payloads(marker):
    """Expressions that would escape a builtins-free ``eval``; the second creates ``marker``."""
    return ["().__class__.__base__.__subclasses__()",
            f"__import__('os').system('touch {marker}')",
            f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]('touch {marker}')"]


def small_spec():
    spec = NetworkSpec(dt=1e-4, seed=0)
    spec.add_input("in", 4, indices=[0, 1, 2], times=[1e-3, 2e-3, 3e-3])
    spec.add_population("exc", "lif", 5)
    spec.connect("in", "exc", p=1.0, weight="0.5*nA")
    return spec


def rewrite(path, header=None, arrays=None, drop=()):
    """Rewrite a saved spec: edit its header (a function of the dict) and replace or drop arrays."""
    data = dict(np.load(path, allow_pickle=False))
    head = json.loads(bytes(data["header"]).decode())
    if header is not None:
        head = header(head) or head
    data["header"] = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    data.update(arrays or {})
    for key in drop:
        data.pop(key)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **data)
    return path


def store_card(text):
    """A header edit that replaces the stored lif card with ``text`` and a matching hash (as an attacker would)."""
    def edit(head):
        head["cards"]["lif"] = {"text": text, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return edit


# -- a file never runs code ----------------------------------------------------------------------
@pytest.mark.parametrize("k", range(3))
def test_payload_in_a_card_value_runs_nothing_and_names_the_field(tmp_path, k):
    marker = tmp_path / "ran"
    text = LIF.replace('tau_m = "20*ms"', "tau_m = " + json.dumps(payloads(marker)[k]))
    with pytest.raises(ModelCardError, match=rf"model card 'lif', field 'parameters.tau_m': cannot read .*{REFUSED}"):
        card_from_string(text, name="lif")
    assert not marker.exists()


@pytest.mark.parametrize("k", range(3))
def test_payload_in_a_card_initial_value_runs_nothing_and_names_the_field(tmp_path, k):
    marker = tmp_path / "ran"
    text = LIF.replace('v = "v_rest"', "v = " + json.dumps(payloads(marker)[k]))
    with pytest.raises(ModelCardError, match=rf"field 'neuron.initial.v': .*{REFUSED}"):
        card_from_string(text, name="lif")
    assert not marker.exists()


@pytest.mark.parametrize("field, old, k", [("parameters.tau_m", 'tau_m = "20*ms"', 1),
                                           ("parameters.tau_m", 'tau_m = "20*ms"', 2),
                                           ("neuron.initial.v", 'v = "v_rest"', 1)])
def test_payload_in_the_card_text_of_a_saved_spec_runs_nothing_on_load(tmp_path, field, old, k):
    marker = tmp_path / "ran"
    path = small_spec().save(tmp_path / "net.npz")
    key = old.split(" = ")[0]
    rewrite(path, store_card(LIF.replace(old, f"{key} = " + json.dumps(payloads(marker)[k]))))
    with pytest.raises(ModelCardError, match=rf"model card '.*net.npz:lif', field '{field}': .*{REFUSED}"):
        NetworkSpec.load(path)
    assert not marker.exists()
    assert main(["simulate", str(path), "--duration", "10*ms", "--out", str(tmp_path / "o")]) == 2
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_payload_in_an_initial_value_override_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    pop = small_spec().populations["exc"]
    with pytest.raises(NetworkSpecError, match=r"population 'exc', initial value of 'v': .* is not allowed"):
        initial_values(pop, {"v": payloads(marker)[1]})
    assert not marker.exists()


def test_an_edited_card_text_with_a_stale_hash_is_refused(tmp_path):
    path = small_spec().save(tmp_path / "net.npz")

    def edit(head):
        head["cards"]["lif"]["text"] = LIF.replace('"20*ms"', '"21*ms"')
    rewrite(path, edit)
    with pytest.raises(NetworkSpecError, match="net.npz: card 'lif': the stored text does not match its stored hash"):
        NetworkSpec.load(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    model = torch.nn.Linear(2, 1)
    torch.save({"model": model.state_dict(), "optimizer": {}, "state": _Payload(marker)}, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"c.pt: not a readable checkpoint \(UnpicklingError"):
        load_checkpoint(tmp_path / "c.pt", model)
    assert not marker.exists()


# -- values checked where they enter -------------------------------------------------------------------
@pytest.mark.parametrize("old, new, field, problem", [
    ('tau_m = "20*ms"', 'tau_m = "0*ms"', "parameters.tau_m", r"a time constant, must be > 0 s; got 0. s"),
    ('tau_m = "20*ms"', 'tau_m = "-20*ms"', "parameters.tau_m", "a time constant, must be > 0 s"),
    ('tau_m = "20*ms"', 'tau_m = "1e999*ms"', "parameters.tau_m", "'1e999\\*ms' is not finite"),
    ('tau_m = "20*ms"', 'tau_m = "(1e999 - 1e999)*ms"', "parameters.tau_m", "is not finite"),
    ('t_ref = "2*ms"', 't_ref = "-2*ms"', "parameters.t_ref", "a duration, must be >= 0 s"),
    ('refractory = "t_ref"', 'refractory = "-2*ms"', "neuron.refractory", "must be >= 0 s"),
    ("cv = 0.5", "cv = nan", "heterogeneity.tau_m", "nan is not finite"),
    ("cv = 0.5", "cv = 1e3", "heterogeneity.tau_m", r"can give values equal to or below 0 \(as low as 0"),
    ('v = "v_rest"', 'v = "log(-1)*mV"', "neuron.initial.v", "is not finite"),
    ('tau_m = "20*ms"', 'tau_m = "20"', "parameters.tau_m", "has no unit \\('20'\\), and unit mismatch in right-hand "
                                                          "side of dv/dt"),
])
def test_impossible_card_values_are_refused_naming_the_field(old, new, field, problem):
    assert old in LIF
    with pytest.raises(ModelCardError, match=rf"model card 'lif', field '{field}': .*{problem}"):
        card_from_string(LIF.replace(old, new), name="lif")


@pytest.mark.parametrize("key, value, problem", [
    ("proj/in_to_exc/weights", np.nan, r"projection 'in_to_exc', weights: must be finite, got nan at index 3"),
    ("proj/in_to_exc/weights", np.inf, r"projection 'in_to_exc', weights: must be finite, got inf at index 3"),
    ("pop/exc/tau_m", np.nan, r"population 'exc', parameter 'tau_m': must be finite, got nan at index 3"),
    ("pop/exc/tau_m", -0.01, r"population 'exc', parameter 'tau_m': must be > 0 s, got -0.01 at index 3"),
    ("input/in/times", np.nan, r"input 'in', spike times: must be finite, got nan at index"),
])
def test_impossible_values_in_a_saved_spec_name_file_field_and_index(tmp_path, key, value, problem):
    path = small_spec().save(tmp_path / "net.npz")
    array = np.load(path)[key].copy()
    array[min(3, array.size - 1)] = value
    rewrite(path, arrays={key: array})
    with pytest.raises(NetworkSpecError, match=rf"net.npz: {problem}"):
        NetworkSpec.load(path)


def test_a_spec_missing_a_header_key_or_an_array_names_it(tmp_path):
    path = small_spec().save(tmp_path / "net.npz")
    rewrite(path, lambda h: h.pop("dt") and None)
    with pytest.raises(NetworkSpecError, match=r"net.npz: lacks 'dt' \(a header key or an array\)"):
        NetworkSpec.load(path)
    path = small_spec().save(tmp_path / "net2.npz")
    rewrite(path, drop=["proj/in_to_exc/weights"])
    with pytest.raises(NetworkSpecError, match=r"net2.npz: lacks 'proj/in_to_exc/weights' \(a header key or an "):
        NetworkSpec.load(path)
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:300])
    with pytest.raises(NetworkSpecError, match="cut.npz"):
        NetworkSpec.load(tmp_path / "cut.npz")


def test_delays_off_the_time_grid_are_an_error_unless_rounding_is_asked_for():
    spec = small_spec()
    with pytest.raises(NetworkSpecError, match=r"projection 'slow', delays: 0.00015 s at index 0 is not a whole "
                                               r"number of time steps \(dt = 0.0001 s\)"):
        spec.connect("in", "exc", weight="0.5*nA", delay="0.15*ms", name="slow")
    proj = spec.connect("in", "exc", weight="0.5*nA", delay="0.17*ms", round_delays=True, name="late")
    assert np.allclose(proj.delays, 2e-4)
    with pytest.raises(NetworkSpecError, match=r"delays: must be >= 0 s, got -0.001 at index 0"):
        spec.connect("in", "exc", weight="0.5*nA", delay="-1*ms", name="early")


def test_distribution_overrides_and_runs_are_checked_before_brian2(caplog):
    from neurocode.brian import simulate
    from neurocode.cards import Distribution

    spec = small_spec()
    wide = Distribution.from_table("tau_m", {"distribution": "gamma", "mean": "20*ms", "cv": 1e3})
    with pytest.raises(NetworkSpecError, match=r"population 'wide', parameter 'tau_m': must be > 0 s, got 0.0 at "):
        spec.add_population("wide", "lif", 50, tau_m=wide)
    with pytest.raises(NetworkSpecError, match=r"duration 5e-05 s is shorter than the time step dt = 0.0001 s"):
        simulate(spec, 5e-5, progress=False)
    with caplog.at_level(logging.WARNING):
        simulate(spec, 2.5e-3, progress=False)
    assert "input 'in': 1 of 3 spikes lie at or after the end of the run (0.0025 s), first 0.003 s at index 2; " \
        "they are not delivered" in caplog.text


def test_a_run_that_overflows_raises_instead_of_returning_nan():
    from neurocode.brian import simulate

    spec = small_spec()
    spec.projections[0].weights[:] = 1e308          # finite, but three spikes overflow I_syn
    with pytest.raises(NetworkSpecError, match=r"population 'exc': '(I_syn|v)' is -?(inf|nan) in neuron 0 at the end "
                                               "of the run .* the dynamics overflowed"):
        simulate(spec, 5e-3, progress=False)


def test_huge_networks_are_refused_by_a_memory_estimate():
    from neurocode.presets import default_network

    with pytest.raises(NetworkSpecError, match=r"a default network of 300000 neurons draws dense connection masks "
                                               r"needs about .* GiB of memory, more than the .* GiB available"):
        default_network("lif", size=300_000)


def test_corrupt_and_truncated_dataset_files_name_the_file_and_the_fix(tmp_path):
    import gzip

    from neurocode.data import load_images

    images = gzip.compress(np.zeros(16 + 28 * 28 * 2, np.uint8).tobytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(images[: len(images) // 2])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz is corrupt or truncated \(EOFError.*give the "
                                           "folder that holds the Fashion-MNIST IDX files"):
        load_images("fashion_mnist", "test", root=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz is corrupt or truncated \(BadGzipFile"):
        load_images("fashion_mnist", "test", root=tmp_path)


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert write_text(tmp_path / "a.txt", "x").stat().st_mode & 0o777 == 0o640
        os.umask(0o002)
        assert write_text(tmp_path / "b.txt", "x").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_validate_refuses_labels_out_of_range_and_warns_at_a_coarser_dt(caplog, monkeypatch):
    from neurocode.torch.ttfs import TTFSNetwork
    from neurocode.validate import run, validate_spec

    spec = TTFSNetwork((20, 8, 3), seed=1).to_spec(dt=1e-5)
    x = np.random.default_rng(0).random((4, 20))
    with pytest.raises(NetworkSpecError, match=r"labels must be integers in \[0, 3\) for the 3 neurons of output "
                                               r"'out', got int64 values in \[0, 5\]"):
        validate_spec(spec, x, np.array([0, 1, 2, 5]), device="runtime")

    def stop(*args, **kwargs):
        raise RuntimeError("presented")
    monkeypatch.setattr(run, "present", stop)
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError, match="presented"):
        validate_spec(spec, x, np.array([0, 1, 2, 0]), device="runtime", dt=5e-5)
    assert "validating at dt = 0.05 ms, coarser than the 0.01 ms the network was trained at" in caplog.text


def test_rank_coding_options_are_checked(tmp_path):
    from neurocode.training.rank_coding import train_run

    for kwargs, problem in [({"epochs": 0}, "epochs = 0: must be an integer >= 1"),
                            ({"lr": float("nan")}, "lr = nan: must be a number > 0"),
                            ({"theta": 1.0}, "theta = 1.0: must be a number > 0 and < 1"),
                            ({"batch_size": "64"}, "batch_size = '64': must be an integer >= 1")]:
        with pytest.raises(ConfigError, match=problem):
            train_run("noise", **kwargs, out=tmp_path / "rc")
    assert not (tmp_path / "rc").exists()


def test_an_output_folder_with_results_is_refused_before_the_work(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already holds results of another run \(summary.json\); give another "
                                          "folder, or pass --overwrite"):
        check_output_dir(tmp_path, ["spikes.npz", "summary.json"])
    assert check_output_dir(tmp_path, ["spikes.npz", "summary.json"], overwrite=True) == tmp_path


# -- the command line ------------------------------------------------------------------------------------
def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurocode: error: ")
    return err[0]


@pytest.mark.parametrize("argv, message", [
    (["simulate", "lif", "--duration", "-5ms"], "--duration must be > 0 s and finite, got '-5ms'"),
    (["simulate", "lif", "--duration", "1e999*second"], r"--duration: '1e999\*second' is not finite"),
    (["simulate", "lif", "--duration", "().__class__"], "--duration: cannot read .* attribute access"),
    (["simulate", "lif", "--duration", "0.05ms"], "duration 5e-05 s is shorter than the time step"),
    (["simulate", "lif", "--size", "300000", "--duration", "10ms"], "GiB of memory"),
    (["train", "CFG", "--set", "train.epoch=2"], "--set train.epoch: unknown key 'train.epoch'; known:"),
    (["train", "CFG", "--set", "optim.name=sgd"], "--set optim.name: unknown key 'optim'"),
    (["train", "CFG", "--set", "train.epochs=-3"], "train.epochs = -3: must be an integer >= 1"),
    (["train", "CFG", "--set", "train.epochs=0"], "train.epochs = 0: must be an integer >= 1"),
    (["train", "CFG", "--set", "train.batch_size=0"], "train.batch_size = 0: must be an integer >= 1"),
    (["train", "CFG", "--set", "train.lr=fast"], "train.lr = 'fast': must be a number > 0"),
    (["train", "BAD", "--set", "train.lr=1"], r"bad.toml: not valid TOML"),
    (["train", "CFG", "--no-resume", "--set", "data.name=cifar"], r"data.name = 'cifar': must be one of"),
    (["validate", "RUN", "--root", "/tmp"], "--root names the dataset folder of --data; give --data too"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "c.toml").write_text('[data]\nname = "mnist5k"\n[train]\nepochs = 1\n')
    (tmp_path / "bad.toml").write_text('[train\nepochs = 1\n')
    subs = {"CFG": str(tmp_path / "c.toml"), "BAD": str(tmp_path / "bad.toml"), "RUN": str(tmp_path)}
    argv = [subs.get(a, a) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    line = error_line(capsys)
    assert re.search(message, line), line
    assert not (tmp_path / "out" / "checkpoint.pt").exists() and not (tmp_path / "out" / "network.npz").exists()


def test_cli_refuses_outputs_before_simulating(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["simulate", "lif", "--out", str(tmp_path / "file")]) == 2
    assert "--out " + str(tmp_path / "file") + " is a file; give a folder" in error_line(capsys)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "spikes.npz").write_bytes(b"")
    assert main(["simulate", "lif", "--out", str(tmp_path / "run")]) == 2
    assert "already holds results of another run (spikes.npz)" in error_line(capsys)
    spec = small_spec().save(tmp_path / "net.npz")
    assert main(["simulate", str(spec), "--size", "10", "--out", str(tmp_path / "o")]) == 2
    assert "--size set a card's default network" in error_line(capsys)


def test_cli_simulates_a_card_given_as_a_path(tmp_path):
    assert main(["simulate", str(REPO / "equations" / "lif.toml"), "--size", "5", "--duration", "5*ms",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["populations"]["net"]["n_neurons"] == 5


def test_stale_card_is_reported_and_chosen_from_the_command_line(tmp_path, caplog):
    card = tmp_path / "mine.toml"
    card.write_text(LIF)
    spec = NetworkSpec(dt=1e-4)
    spec.add_input("in", 1, indices=[0], times=[1e-3])
    spec.add_population("exc", load_card(card), 2)
    spec.connect("in", "exc", weight="0.5*nA")
    spec.save(tmp_path / "net.npz")
    card.write_text(LIF.replace('v_th = "-50*mV"', 'v_th = "-55*mV"'))
    with caplog.at_level(logging.WARNING):
        assert main(["simulate", str(tmp_path / "net.npz"), "--duration", "5ms", "--out", str(tmp_path / "a"),
                     "--no-progress"]) == 0
    assert f"card 'mine' (population 'exc'): {card} has changed since the spec was saved; using the text stored" \
        in caplog.text
    assert main(["simulate", str(tmp_path / "net.npz"), "--duration", "5ms", "--out", str(tmp_path / "b"),
                 "--no-progress", "--card-source", "current"]) == 0
    assert "using the file as it is now" in caplog.text
    assert NetworkSpec.load(tmp_path / "net.npz").stale_cards() == ["mine"]


def test_our_errors_never_show_brian2s_report_a_bug_banner(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 truncated")
    proc = subprocess.run([sys.executable, "-m", "neurocode", "simulate", str(tmp_path / "x.npz"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 2
    assert "Brian 2 encountered" not in proc.stderr and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("neurocode: error: ")] == \
        [line for line in proc.stderr.splitlines() if "error" in line]


def test_every_domain_error_is_a_neurocode_error():
    from neurocode.cards import DistributionError
    from neurocode.cards.expressions import ExpressionError
    from neurocode.data.images import DatasetMissingError
    from neurocode.data.keywords import KeywordDataError
    from neurocode.errors import DeviceError
    from neurocode.lyapunov.spectrum import LyapunovError
    from neurocode.torch.codegen import TranslationError
    from neurocode.units import UnitParseError
    from neurocode.validate import VariantError

    for cls, base in [(ModelCardError, ValueError), (NetworkSpecError, ValueError), (DeviceError, RuntimeError),
                      (UnitParseError, ValueError), (DistributionError, ValueError), (TranslationError, ValueError),
                      (LyapunovError, ValueError), (VariantError, ValueError), (ExpressionError, ValueError),
                      (ConfigError, ValueError), (DatasetError, ValueError), (KeywordDataError, RuntimeError),
                      (DatasetMissingError, FileNotFoundError)]:
        assert issubclass(cls, NeurocodeError) and issubclass(cls, base), cls
