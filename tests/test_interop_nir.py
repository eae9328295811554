"""NIR export and import: round trip, refusals, and a network exported by snnTorch."""

import numpy as np
import pytest
import torch

pytest.importorskip("nir")

from neurocode.brian import simulate  # noqa: E402
from neurocode.errors import NetworkSpecError  # noqa: E402
from neurocode.interop import from_nir, to_nir, write_nir  # noqa: E402
from neurocode.spec import NetworkSpec  # noqa: E402
from neurocode.torch import NetworkRunner  # noqa: E402

DT = 1e-4


def two_layer_spec():
    """Input -> LIF-like (tau_syn = dt) with bias -> CubaLIF with per-target delays, and the lif card."""
    spec = NetworkSpec(dt=DT, seed=3)
    spec.add_input("x", 5)
    spec.add_population("h", "nir_cubalif", 6, tau_syn=f"{DT}*second", tau_mem=np.linspace(5e-4, 2e-3, 6),
                        r=np.linspace(5.0, 20.0, 6), bias=np.linspace(-0.1, 0.1, 6))
    spec.add_population("o", "nir_cubalif", 3, tau_syn=np.array([2e-4, 3e-4, 4e-4]), v_leak=np.array([0.1, 0, -0.1]))
    spec.add_population("c", "lif", 2, t_ref="0*ms")
    spec.connect("x", "h", p=0.6, weight="0.7")
    proj = spec.connect("h", "o", p=0.8, weight="0.4")
    proj.delays = np.array([2e-4, 5e-4, 1e-3])[proj.j]
    spec.connect("h", "c", p=1.0, weight="0.3*nA")
    return spec


def test_round_trip_is_identical(tmp_path):
    spec = two_layer_spec()
    graph = to_nir(spec)
    assert {k: type(v).__name__ for k, v in graph.nodes.items() if k in spec.populations} == \
        {"h": "LIF", "o": "CubaLIF", "c": "CubaLIF"}
    back = from_nir(write_nir(spec, tmp_path / "net.nir"))      # through NIR's HDF5 file, dt from its metadata
    assert back.dt == spec.dt and {n: i.size for n, i in back.inputs.items()} == {"x": 5}
    for name in ("h", "o"):
        a, b = spec.populations[name], back.populations[name]
        assert b.card.name == a.card.name and b.params.keys() == a.params.keys()
        for key in a.params:
            np.testing.assert_array_equal(b.params[key], a.params[key], err_msg=f"{name}.{key}")
    for proj in spec.projections:
        new = back.projection(proj.name)
        for key in ("i", "j", "weights"):
            np.testing.assert_array_equal(getattr(new, key), getattr(proj, key), err_msg=f"{proj.name}.{key}")
        assert (new.delays is None) == (proj.delays is None)
        if proj.delays is not None:
            np.testing.assert_array_equal(new.delays, proj.delays)
    # the lif card comes back as nir_cubalif in SI values: the same ODE, NIR has no units
    c, lif = back.populations["c"].params, spec.populations["c"].params
    np.testing.assert_array_equal(c["tau_mem"], lif["tau_m"])
    np.testing.assert_array_equal(c["v_threshold"], lif["v_th"])
    np.testing.assert_array_equal(c["r"], lif["R_m"])


@pytest.mark.parametrize("card, overrides, match", [
    ("lif", {}, r"population 'p' \(card 'lif'\) cannot be expressed in NIR: refractory period 't_ref' \(up to 2 ms\)"),
    ("alif", {"t_ref": "0*ms"}, r"(?s)reset 'v = v_reset.theta \+= beta' is not the single statement 'v = expression'"),
    ("coba_lif", {"t_ref": "0*ms"}, r"(?s)on_pre 'g_e_post \+= .*' does not add the weight to one variable"),
    ("izhikevich", {}, r"threshold 'v >= v_peak' is not 'v > expression'"),
    ("ttfs", {}, r"threshold '\(v >= v_th or t - t_start .*\) and fired == 0' is not 'v > expression'"),
    ("nir_cubaif", {"tau_syn": "1*ms"}, r"IF\) needs tau_syn = dt"),
])
def test_cards_without_nir_counterpart_are_refused(card, overrides, match):
    spec = NetworkSpec(dt=DT)
    spec.add_population("p", card, 2, **overrides)
    with pytest.raises(NetworkSpecError, match=match):
        to_nir(spec)


def test_delays_nir_cannot_hold_are_refused():
    spec = NetworkSpec(dt=DT)
    spec.add_input("x", 2)
    spec.add_population("p", "nir_cubalif", 2)
    spec.connect("x", "p", p=1.0, weight="1", delay="1*ms").delays[:] = [1e-3, 2e-3, 3e-3, 4e-3]
    with pytest.raises(NetworkSpecError, match=r"projection 'x_to_p': delays vary within a target and within a source"):
        to_nir(spec)


def test_import_needs_dt_and_known_nodes():
    import nir
    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))), nir.LIF(
        tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
    with pytest.raises(NetworkSpecError, match="from_nir needs dt"):
        from_nir(graph)
    odd = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))), nir.LI(
        tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)))
    with pytest.raises(NetworkSpecError, match="NIR node 'li' is a LI; neurocode imports"):
        from_nir(odd, dt=DT)


# -- a network exported by snnTorch ----------------------------------------------------------------
def snntorch_network(seed=0, steps=120, n_in=6):
    """A 6-8-4 network: Affine -> Leaky -> Linear -> Synaptic (zero reset), random input spikes.

    Returns ``(net, x, spikes per layer (steps, n), min |mem - threshold| over the run)``.
    """
    snn = pytest.importorskip("snntorch")
    from snntorch import utils
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, 8),
        snn.Leaky(beta=torch.linspace(0.8, 0.95, 8), threshold=torch.ones(8), reset_mechanism="zero",
                  init_hidden=True),
        torch.nn.Linear(8, 4, bias=False),
        snn.Synaptic(alpha=torch.linspace(0.6, 0.9, 4), beta=torch.linspace(0.8, 0.9, 4), threshold=torch.ones(4),
                     reset_mechanism="zero", reset_delay=False, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    x = (torch.rand(steps, 1, n_in) < 0.3).float()
    utils.reset(net)
    spikes, margin = ([], []), np.inf
    with torch.no_grad():
        for t in range(steps):
            s1 = net[1](net[0](x[t]))
            margin = min(margin, float((net[1].mem - 1).abs().min()))
            s2, _, mem2 = net[3](net[2](s1))
            margin = min(margin, float((mem2 - 1).abs().min()))
            spikes[0].append(s1[0].numpy())
            spikes[1].append(s2[0].numpy())
    return net, x, [np.array(s) for s in spikes], margin


def imported(net, x):
    from snntorch.export_nir import export_to_nir
    spec = from_nir(export_to_nir(net, x[0, 0]), dt=1e-4)   # snnTorch's exporter assumes dt = 0.1 ms
    t, i = np.nonzero(x[:, 0].numpy())
    spec.inputs["input"].indices, spec.inputs["input"].times = i, t * spec.dt
    return spec


def test_snntorch_network_gives_the_same_spikes_in_the_torch_engine():
    """Layer k of the imported network spikes k steps after snnTorch's (Brian2's schedule: a spike
    reaches its targets after their threshold), otherwise identically: the imported cards step NIR's
    equations as snnTorch does. Float32 (snnTorch) against float64 (here) differ by ~1e-7; the run
    keeps every membrane at least 1e-4 away from threshold, so no spike can flip."""
    net, x, (s1, s2), margin = snntorch_network()
    assert margin > 1e-4 and s1.sum() > 20 and s2.sum() > 10
    spec = imported(net, x)
    assert [p.card.name for p in spec.populations.values()] == ["nir_cubalif", "nir_cubalif"]
    steps = len(s1)
    with torch.no_grad():
        out = NetworkRunner(spec, dtype=torch.float64)(steps=steps + 2)
    h, o = (out.spikes[name][:, 0].numpy() for name in spec.populations)
    np.testing.assert_array_equal(h[1:steps + 1], s1)
    np.testing.assert_array_equal(o[2:steps + 2], s2)


def test_snntorch_network_gives_the_same_spikes_in_brian2():
    net, x, (s1, s2), _ = snntorch_network(seed=1, steps=60)
    spec = imported(net, x)
    steps = len(s1)
    res = simulate(spec, (steps + 2) * spec.dt)
    for (name, ref), lag in zip(zip(spec.populations, (s1, s2)), (1, 2)):
        idx, times = res.spikes[name]
        got = np.zeros((steps + 2, ref.shape[1]))
        got[np.round(times / spec.dt).astype(int), idx] = 1
        np.testing.assert_array_equal(got[lag:steps + lag], ref, err_msg=name)


def test_cli_export_then_import(tmp_path, capsys):
    from neurocode.cli import main
    spec = two_layer_spec()
    spec.save(tmp_path / "net.npz")
    assert main(["nir", "export", str(tmp_path / "net.npz"), str(tmp_path / "net.nir")]) == 0
    assert main(["nir", "import", str(tmp_path / "net.nir"), str(tmp_path / "back.npz"), "--dt", "1e-4"]) == 0
    assert "populations c (nir_cubalif, 2), h (nir_cubalif, 6), o (nir_cubalif, 3); 3 projection(s)" in \
        capsys.readouterr().out
    back = NetworkSpec.load(tmp_path / "back.npz")
    np.testing.assert_array_equal(back.projection("h_to_o").delays, spec.projection("h_to_o").delays)
    spec.add_population("r", "lif", 2)
    spec.save(tmp_path / "bad.npz")
    assert main(["nir", "export", str(tmp_path / "bad.npz"), str(tmp_path / "bad.nir")]) == 2
    assert "population 'r' (card 'lif') cannot be expressed in NIR: refractory period" in capsys.readouterr().err
