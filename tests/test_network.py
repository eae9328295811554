"""NetworkSpec: heterogeneous sampling, validation and a lossless, atomic save/load."""

import numpy as np
import pytest
from brian2 import mV, ms, nA, nS

from neurocode.errors import NetworkSpecError
from neurocode.cards.heterogeneity import Distribution
from neurocode.spec import FORMAT_VERSION, NetworkSpec, Projection


def small_spec():
    spec = NetworkSpec(dt=0.1e-3, seed=7, metadata={"study": "test"})
    spec.add_input("in", 50, indices=[0, 3, 49], times=[1e-3, 2e-3, 3.5e-3])
    spec.add_population("exc", "lif", 80)
    spec.add_population("ada", "alif", 20, beta=3 * mV)
    spec.connect("in", "exc", p=0.3, weight=0.4 * nA)
    spec.connect("exc", "exc", p=0.1, weight=0.1 * nA, delay=1.5 * ms)
    spec.add_projection(Projection.from_dense("exc", "ada", np.random.default_rng(0).normal(0, 1e-10, (80, 20))))
    return spec


@pytest.mark.parametrize("kind, table", [
    ("gamma", {"distribution": "gamma", "mean": "20*ms", "cv": 0.5}),
    ("lognormal", {"distribution": "lognormal", "mean": "20*ms", "cv": 0.3}),
    ("normal", {"distribution": "normal", "mean": "20*ms", "cv": 0.2, "low": "1*ms"}),
])
def test_heterogeneous_mean_and_cv_within_sampling_error(kind, table):
    n = 20000
    spec = NetworkSpec(seed=3)
    pop = spec.add_population("p", "lif", n, tau_m=Distribution.from_table("tau_m", table))
    x = pop.params["tau_m"]
    cv = table["cv"]
    # standard error of the mean is sigma/sqrt(n); allow 4 standard errors
    assert abs(x.mean() - 20e-3) < 4 * cv * 20e-3 / np.sqrt(n)
    assert abs(x.std() / x.mean() - cv) < 0.03 * cv + 4 * cv / np.sqrt(2 * n)
    assert x.min() > 0


def test_card_heterogeneity_is_sampled_and_homogeneous_params_are_constant():
    pop = NetworkSpec(seed=1).add_population("p", "lif", 5000)
    assert pop.params["tau_m"].std() > 0.004           # lif card: gamma, cv 0.5 around 20 ms
    assert np.all(pop.params["v_th"] == -50e-3)


def test_uniform_bounds_respected():
    d = Distribution.from_table("a", {"distribution": "uniform", "low": "1*ms", "high": "3*ms"})
    x = d.sample(10000, seed=0)
    assert x.min() >= 1e-3 and x.max() <= 3e-3 and abs(x.mean() - 2e-3) < 2e-5


def test_same_seed_same_spec():
    a, b = small_spec(), small_spec()
    np.testing.assert_array_equal(a.populations["exc"].params["tau_m"], b.populations["exc"].params["tau_m"])
    np.testing.assert_array_equal(a.projections[1].i, b.projections[1].i)


def test_save_load_roundtrip(tmp_path):
    spec = small_spec()
    path = spec.save(tmp_path / "net.npz")
    loaded = NetworkSpec.load(path)
    assert loaded.dt == spec.dt and loaded.seed == spec.seed and loaded.metadata == spec.metadata
    for name, pop in spec.populations.items():
        other = loaded.populations[name]
        assert other.size == pop.size and other.card.sha256 == pop.card.sha256
        for key in pop.params:
            np.testing.assert_array_equal(other.params[key], pop.params[key])
    for name, inp in spec.inputs.items():
        np.testing.assert_array_equal(loaded.inputs[name].times, inp.times)
        np.testing.assert_array_equal(loaded.inputs[name].indices, inp.indices)
    for p, q in zip(spec.projections, loaded.projections):
        assert (p.name, p.source, p.target) == (q.name, q.source, q.target)
        for key in ("i", "j", "weights"):
            np.testing.assert_array_equal(getattr(p, key), getattr(q, key))
        assert (p.delays is None) == (q.delays is None)
    assert loaded.stale_cards() == []
    assert not list(tmp_path.glob("*.tmp*")), "atomic save leaves no temporary file"


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    path = small_spec().save(tmp_path / "net.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        small_spec().save(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp*"))


def test_load_rejects_other_version(tmp_path):
    import json
    path = small_spec().save(tmp_path / "net.npz")
    data = dict(np.load(path))
    header = json.loads(bytes(data["header"]).decode())
    header["format_version"] = FORMAT_VERSION + 1
    data["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "future.npz", **data)
    with pytest.raises(NetworkSpecError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        NetworkSpec.load(tmp_path / "future.npz")


def test_load_rejects_bad_shapes(tmp_path):
    path = small_spec().save(tmp_path / "net.npz")
    data = dict(np.load(path))
    data["pop/exc/tau_m"] = data["pop/exc/tau_m"][:10]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(NetworkSpecError, match="'tau_m' has shape \\(10,\\), expected \\(80,\\)"):
        NetworkSpec.load(tmp_path / "bad.npz")


def test_load_rejects_non_spec(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(NetworkSpecError, match="is not a NetworkSpec file"):
        NetworkSpec.load(tmp_path / "x.npz")
    with pytest.raises(NetworkSpecError, match="no NetworkSpec file"):
        NetworkSpec.load(tmp_path / "missing.npz")


def test_changed_card_is_detected(tmp_path):
    spec = small_spec()
    lib = tmp_path / "cards"
    lib.mkdir()
    for name in ("lif", "alif"):
        text = spec.populations["exc" if name == "lif" else "ada"].card.text
        (lib / f"{name}.toml").write_text(text.replace('"20*ms"', '"25*ms"') if name == "lif" else text)
    assert spec.stale_cards(lib) == ["lif"]


@pytest.mark.parametrize("call, message", [
    (lambda s: s.connect("in", "exc", p=0.1, weight=1 * nS), "has units of siemens, expected amp"),
    (lambda s: s.add_population("exc", "lif", 3), "already exists"),
    (lambda s: s.add_population("q", "lif", 3, tau_m=5 * mV), "'tau_m' = 5. mV has units of volt"),
    (lambda s: s.add_population("q", "lif", 3, gain=1), r"has no parameter\(s\) \['gain'\]"),
    (lambda s: s.connect("exc", "in", p=0.1, weight=1 * nA), "must be a neuron population"),
    (lambda s: s.add_projection(Projection("in", "exc", [0], [500], [1e-9])), "indices out of range"),
    (lambda s: s.add_input("in2", 3, indices=[5], times=[0.0]), r"indices must lie in \[0, 3\)"),
    (lambda s: s.add_input("in3", 3, indices=[0], times=[-1e-3]), "spike times: must be >= 0 s, got -0.001 at index 0"),
    (lambda s: s.size("nope"), "no population or input named 'nope'"),
])
def test_bad_specs_are_rejected(call, message):
    with pytest.raises(NetworkSpecError, match=message):
        call(small_spec())


def test_dense_roundtrip():
    w = np.arange(12.0).reshape(3, 4) * 1e-12
    proj = Projection.from_dense("a", "b", w)
    np.testing.assert_array_equal(proj.dense((3, 4)), w)


def test_connect_keeps_autapses_as_brian2_unless_asked():
    spec = NetworkSpec(dt=1e-4, seed=0)
    spec.add_population("p", "lif", 30)
    with_self = spec.connect("p", "p", p=1.0, weight=0.1 * nA, name="all")
    without = spec.connect("p", "p", p=1.0, weight=0.1 * nA, autapses=False, name="no_self")
    assert with_self.i.size == 900 and np.sum(with_self.i == with_self.j) == 30
    assert without.i.size == 870 and not np.any(without.i == without.j)


def test_typed_encoding_and_readout_round_trip_and_version_1_files_get_them(tmp_path):
    from pathlib import Path

    from neurocode.spec import Encoding, Readout
    spec = small_spec()
    spec.encoding = Encoding("latency", "in", t_input=1e-3)
    spec.readout = Readout("first_spike", "exc")
    back = NetworkSpec.load(spec.save(tmp_path / "typed.npz"))
    assert back.encoding == spec.encoding and back.readout == spec.readout
    with pytest.raises(NetworkSpecError, match="encoding kind 'pixels'"):
        Encoding("pixels", "in")
    with pytest.raises(NetworkSpecError, match="read-out rule 'loudest'"):
        Readout("loudest", "out")
    shipped = Path(__file__).resolve().parents[1] / "studies" / "rank_coding" / "trained" / "spiking_mnist5k.npz"
    old = NetworkSpec.load(shipped)                       # a version-1 file: prose metadata only
    assert old.encoding == Encoding("spike_steps", "in", steps=20)
    assert old.readout == Readout("first_spike", "out", 5.0, 0.5, "sigmoid")
