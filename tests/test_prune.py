"""LNP pruning steps and the random / activity baselines."""

import numpy as np
import pytest

from neurocode.lyapunov.hrsnn import chrsnn, hrsnn
from neurocode.lyapunov.prune import (activity_prune, betweenness_order, delocalise, effective_resistance,
                                      excitatory_neurons, ipr, leading_eigenvector, lnp_prune, lyapunov_matrix,
                                      noise_prune_synapses, optimise_timescales, random_prune, spectral_radius,
                                      split_count)
from neurocode.spec import NetworkSpec


def test_hrsnn_has_gamma_time_constants_and_dale_signs():
    spec = hrsnn(n=300, p=0.1, tau_mean=20e-3, tau_cv=0.5, seed=0)
    tau = spec.populations["hrsnn"].params["tau_m"]
    assert tau.mean() == pytest.approx(20e-3, rel=0.1) and tau.std() / tau.mean() == pytest.approx(0.5, rel=0.15)
    proj = spec.projection("recurrent")
    exc = proj.i < 240
    assert np.all(proj.weights[exc] > 0) and np.all(proj.weights[~exc] < 0)
    assert proj.i.size / (300 * 299) == pytest.approx(0.1, rel=0.1)


def test_chrsnn_clusters_are_denser_inside():
    spec = chrsnn(n_clusters=4, cluster_size=50, p_in=0.2, p_out=0.02, seed=0)
    proj, cluster = spec.projection("recurrent"), np.array(spec.metadata["cluster"])
    inside = cluster[proj.i] == cluster[proj.j]
    assert inside.mean() > 0.7
    means = [spec.populations["hrsnn"].params["tau_m"][cluster == c].mean() for c in range(4)]
    assert means[0] < means[-1]


def test_baselines_keep_requested_counts():
    spec = hrsnn(n=60, p=0.2, seed=1)
    r = random_prune(spec, 40, 120, seed=0)
    assert r.populations["hrsnn"].size == 40 and r.projection("recurrent").i.size == 120
    rates = np.arange(60, dtype=float)
    a = activity_prune(spec, 30, 80, rates)
    assert a.metadata["kept_neurons"] == list(range(30, 60))
    assert a.projection("recurrent").i.size == 80


def test_effective_resistance_of_a_path_and_a_cycle():
    # path 0-1-2 with unit conductances: R(0,1) = 1; a 4-cycle: R = 3/4 per edge
    assert effective_resistance(3, np.array([0, 1]), np.array([1, 2]), np.ones(2)) == pytest.approx([1, 1])
    i, j = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    assert effective_resistance(4, i, j, np.ones(4)) == pytest.approx(np.full(4, 0.75))


def test_lyapunov_matrix_is_a_harmonic_mean():
    spec = NetworkSpec(dt=1e-4)
    spec.add_population("hrsnn", "lif", 2)
    from neurocode.spec import Projection
    spec.add_projection(Projection("hrsnn", "hrsnn", [0], [1], [1e-10], name="recurrent"))
    L = lyapunov_matrix(spec, [-10.0, 40.0])
    # H_0 = H_1 = harmonic mean of 10 and 40 = 16; L = 16
    assert L == pytest.approx([16.0], rel=1e-6)


def test_betweenness_removes_leaves_of_a_star_first():
    i, j = np.array([1, 2, 3, 0, 0, 0]), np.array([0, 0, 0, 1, 2, 3])
    order, bc = betweenness_order(4, i, j, np.ones(6))
    assert order[-1] == 0 and bc[0] > 0 and np.all(bc[1:] == 0)


def test_delocalisation_lowers_ipr():
    rng = np.random.default_rng(0)
    n = 30
    i, j = np.array([0, 1, 0, 2, 0, 3]), np.array([1, 0, 2, 0, 3, 0])    # a localised hub
    i = np.concatenate([i, rng.integers(0, n, 20)])
    j = np.concatenate([j, rng.integers(0, n, 20)])
    w = np.concatenate([np.ones(6), 0.05 * np.ones(20)])
    before = ipr(leading_eigenvector(n, i, j, w))
    i2, j2, w2 = delocalise(n, i, j, w, add_fraction=0.2, candidates=40, seed=1)
    assert i2.size > i.size and ipr(leading_eigenvector(n, i2, j2, w2)) < before


def test_lnp_pipeline_with_given_exponents():
    spec = hrsnn(n=50, p=0.2, seed=2)
    lam = -np.linspace(5, 50, 50)
    out, info = lnp_prune(spec, keep_synapses=150, keep_neurons=35, exponents=lam, optimise=False)
    assert out.populations["hrsnn"].size == 35
    assert 0 < out.projection("recurrent").i.size <= 150 + 5
    assert out.metadata["pruned_by"] == "lnp" and len(info["exponents"]) == 50


def test_errors_name_the_problem():
    spec = hrsnn(n=20, p=0.2, seed=0)
    with pytest.raises(ValueError, match="keep_neurons must lie in \\[1, 20\\]"):
        random_prune(spec, 30, 10)
    with pytest.raises(ValueError, match="rates must have shape \\(20,\\)"):
        activity_prune(spec, 10, 10, np.ones(3))
    with pytest.raises(ValueError, match="needs a population 'hrsnn'"):
        random_prune(NetworkSpec(), 1, 0)
    with pytest.raises(ValueError, match="connection probability"):
        hrsnn(n=10, p=0)


def test_noise_pruning_rescales_kept_weights_by_keep_probability():
    spec = hrsnn(n=40, p=0.3, seed=3)
    proj = spec.projection("recurrent")
    L = np.ones(proj.i.size)
    i, j, w = noise_prune_synapses(spec, L, keep_synapses=50, seed=0, rescale=True)
    i0, j0, w0 = noise_prune_synapses(spec, L, keep_synapses=50, seed=0)
    assert np.array_equal(i, i0) and np.array_equal(j, j0)
    original = spec.projection("recurrent").dense((40, 40))[i0, j0]
    np.testing.assert_array_equal(w0, original)
    ratio = w / w0                                   # 1/p >= 1, same sign
    assert np.all(ratio >= 1 - 1e-12) and ratio.max() > 1.5


def test_chrsnn_every_cluster_has_excitatory_and_inhibitory_neurons():
    spec = chrsnn(n_clusters=4, cluster_size=50, p_in=0.3, p_out=0.05, seed=0)
    proj, cluster = spec.projection("recurrent"), np.array(spec.metadata["cluster"])
    sign = np.zeros(200)
    sign[proj.i] = np.sign(proj.weights)
    assert np.all(np.sign(proj.weights) == sign[proj.i])                 # Dale: one sign per source
    for c in range(4):
        assert np.mean(sign[cluster == c] > 0) == pytest.approx(0.8, abs=0.05)


@pytest.mark.parametrize("method", ["random", "activity", "lnp"])
def test_radius_rule_restores_the_dense_spectral_radius(method):
    spec = hrsnn(n=60, p=0.2, seed=4)
    if method == "random":
        out = random_prune(spec, 40, 90, seed=1)
    elif method == "activity":
        out = activity_prune(spec, 40, 90, np.random.default_rng(0).random(60))
    else:
        out, _ = lnp_prune(spec, 120, 40, exponents=-np.linspace(5, 50, 60), optimise=False, seed=1)
    assert spectral_radius(out) == pytest.approx(spectral_radius(spec), rel=1e-9)
    assert out.metadata["weight_gain"] > 1.0                               # pruning shrank the radius


def test_none_rule_keeps_the_original_weights():
    spec = hrsnn(n=60, p=0.2, seed=4)
    W = spec.projection("recurrent").dense((60, 60))
    out = random_prune(spec, 40, 90, seed=1, rescale="none")
    kept, proj = np.array(out.metadata["kept_neurons"]), out.projection("recurrent")
    np.testing.assert_array_equal(proj.weights, W[kept[proj.i], kept[proj.j]])
    with pytest.raises(ValueError, match="unknown rescale rule 'huge'"):
        random_prune(spec, 40, 90, rescale="huge")
    with pytest.raises(ValueError, match="unknown rescale rule 'huge'"):
        lnp_prune(spec, 120, 40, exponents=np.ones(60), optimise=False, rescale="huge")


def test_baselines_matched_to_lnp_have_its_neuron_and_synapse_counts():
    spec = hrsnn(n=80, p=0.15, seed=5)
    lnp, _ = lnp_prune(spec, 150, 50, exponents=-np.linspace(5, 50, 80), optimise=False, seed=0)
    n_syn = lnp.projection("recurrent").i.size
    for out in (random_prune(spec, 50, n_syn, seed=0), activity_prune(spec, 50, n_syn, np.arange(80.0))):
        assert out.populations["hrsnn"].size == lnp.populations["hrsnn"].size == 50
        assert out.projection("recurrent").i.size == n_syn


def test_pruning_is_deterministic_given_a_seed():
    spec = hrsnn(n=60, p=0.2, seed=6)
    lam = -np.linspace(5, 50, 60)
    a, _ = lnp_prune(spec, 120, 40, exponents=lam, optimise=False, seed=3)
    b, _ = lnp_prune(spec, 120, 40, exponents=lam, optimise=False, seed=3)
    c, _ = lnp_prune(spec, 120, 40, exponents=lam, optimise=False, seed=4)
    pa, pb, pc = (x.projection("recurrent") for x in (a, b, c))
    assert np.array_equal(pa.i, pb.i) and np.array_equal(pa.j, pb.j) and np.array_equal(pa.weights, pb.weights)
    assert not (np.array_equal(pa.i, pc.i) and np.array_equal(pa.j, pc.j))
    r1, r2 = random_prune(spec, 40, 90, seed=0), random_prune(spec, 40, 90, seed=0)
    assert np.array_equal(r1.projection("recurrent").weights, r2.projection("recurrent").weights)


def test_timescale_search_can_keep_the_mean():
    spec = hrsnn(n=20, p=0.3, dt=1e-3, seed=7)
    tau, table = optimise_timescales(spec, candidates=3, t_sim=0.01, drive_rate=500.0, drive_weight=0.04e-9,
                                     treatment="surrogate", keep_mean=True)
    base = spec.populations["hrsnn"].params["tau_m"].mean()
    assert len(table) == 3 and all(row["tau_mean_s"] == pytest.approx(base) for row in table)
    assert tau.shape == (20,) and np.all(tau > 0)


def test_lnp_node_rule_random_keeps_the_count_and_unknown_rules_are_named():
    spec = hrsnn(n=60, p=0.2, seed=8)
    lam = -np.linspace(5, 50, 60)
    a, _ = lnp_prune(spec, 120, 40, exponents=lam, optimise=False, seed=1, nodes="random")
    b, _ = lnp_prune(spec, 120, 40, exponents=lam, optimise=False, seed=1)
    assert a.populations["hrsnn"].size == b.populations["hrsnn"].size == 40
    assert a.metadata["kept_neurons"] != b.metadata["kept_neurons"]
    with pytest.raises(ValueError, match="unknown node rule 'hubs'"):
        lnp_prune(spec, 120, 40, exponents=lam, optimise=False, nodes="hubs")


def test_cli_rescale_rule_reaches_every_method(tmp_path, capsys):
    from neurocode.cli import main

    spec = hrsnn(n=40, p=0.2, seed=0)
    spec.save(tmp_path / "dense.npz")
    weights = set(np.round(spec.projection("recurrent").weights, 12))
    for rule in ("none", "radius"):
        out = tmp_path / f"random-{rule}.npz"
        assert main(["prune", str(tmp_path / "dense.npz"), "--method", "random", "--keep", "0.5",
                     "--keep-neurons", "0.8", "--rescale", rule, "-o", str(out)]) == 0
        pruned = NetworkSpec.load(out)
        kept = set(np.round(pruned.projection("recurrent").weights, 12))
        assert (kept <= weights) == (rule == "none")         # 'none' keeps the original weights
    assert spectral_radius(pruned) == pytest.approx(spectral_radius(spec), rel=1e-6)
    assert main(["prune", str(tmp_path / "dense.npz"), "--method", "random", "--keep", "0.5",
                 "--rescale", "inverse-p", "-o", str(tmp_path / "x.npz")]) == 2
    assert "applies to --method lnp only" in capsys.readouterr().err


def _inhibitory_share(spec):
    return float((spec.projection("recurrent").weights < 0).mean())


def test_split_count_follows_shares_and_availability():
    assert split_count(10, [8, 2], [100, 100]).tolist() == [8, 2]
    assert split_count(7, [8, 2], [100, 100]).tolist() == [6, 1]         # 5.6 / 1.4: largest remainder
    assert split_count(10, [8, 2], [5, 100]).tolist() == [5, 5]          # a full class passes its rest on
    with pytest.raises(ValueError, match="cannot keep 11 of 10"):
        split_count(11, [1, 1], [5, 5])


def test_excitatory_neurons_follow_dale_and_refuse_mixed_signs():
    spec = hrsnn(n=50, p=0.3, frac_exc=0.8, seed=0)
    assert excitatory_neurons(spec).tolist() == [True] * 40 + [False] * 10
    w = spec.projection("recurrent").weights
    w[np.nonzero(spec.projection("recurrent").i == 3)[0][0]] *= -1
    with pytest.raises(ValueError, match=r"Dale's law.*neuron\(s\) \[3\]"):
        excitatory_neurons(spec)
    with pytest.raises(ValueError, match="unknown E/I rule 'both'"):
        random_prune(hrsnn(n=20, p=0.3, seed=0), 10, 10, ei="both")


def test_noise_pruning_separate_keeps_the_dense_ei_ratio_mixed_does_not():
    spec = hrsnn(n=200, p=0.1, g_inh=4.0, seed=1)
    proj = spec.projection("recurrent")
    dense = float((proj.weights < 0).mean())
    L = np.ones(proj.i.size)
    keep = int(0.1 * proj.i.size)
    shares = {}
    for ei in ("mixed", "separate"):
        _, _, w = noise_prune_synapses(spec, L, keep, seed=0, ei=ei)
        shares[ei] = float((w < 0).mean())
        assert w.size == pytest.approx(keep, abs=3 * np.sqrt(keep))
    # sampling sd of the share: sqrt(0.2 * 0.8 / 400) = 0.02
    assert shares["separate"] == pytest.approx(dense, abs=0.06)
    assert shares["mixed"] > dense + 0.15                                  # the strong inhibitory synapses win


def test_lnp_separate_keeps_the_dense_ei_ratio_of_neurons_and_synapses():
    spec = hrsnn(n=200, p=0.1, seed=2)
    dense_syn, dense_exc = _inhibitory_share(spec), excitatory_neurons(spec)
    lam = -np.random.default_rng(0).uniform(5, 50, 200)
    shares = {}
    for ei in ("mixed", "separate"):
        out, _ = lnp_prune(spec, 400, 100, exponents=lam, optimise=False, seed=0, ei=ei)
        kept = np.array(out.metadata["kept_neurons"])
        shares[ei] = (_inhibitory_share(out), float((~dense_exc[kept]).mean()))
    assert shares["separate"][1] == pytest.approx(1 - dense_exc.mean(), abs=0.005)      # 20 of 100 neurons
    assert shares["separate"][0] == pytest.approx(dense_syn, abs=0.06)
    assert shares["mixed"][0] > dense_syn + 0.1                                            # 35 % here


@pytest.mark.parametrize("method", ["random", "activity"])
def test_baselines_separate_keep_the_dense_ei_ratio_exactly(method):
    spec = hrsnn(n=200, p=0.1, seed=3)
    dense_syn, exc = _inhibitory_share(spec), excitatory_neurons(spec)
    # activity: inhibitory neurons fire more here, so "mixed" ranks them first
    rates = np.where(exc, 10.0, 30.0) + np.random.default_rng(0).random(200)
    prune = {"random": lambda ei: random_prune(spec, 100, 400, seed=0, ei=ei),
             "activity": lambda ei: activity_prune(spec, 100, 400, rates, ei=ei)}[method]
    out = prune("separate")
    kept = np.array(out.metadata["kept_neurons"])
    assert (~exc[kept]).sum() == 20 and out.projection("recurrent").i.size == 400
    assert (out.projection("recurrent").weights < 0).sum() == round(400 * dense_syn)
    mixed = prune("mixed")
    if method == "random":       # uniform sampling keeps the ratio in expectation only
        assert _inhibitory_share(mixed) == pytest.approx(dense_syn, abs=0.08)
    else:                        # |w| x rate favours the 4x stronger, faster inhibitory synapses
        assert _inhibitory_share(mixed) > dense_syn + 0.2
