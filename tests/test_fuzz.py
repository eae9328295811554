"""Property-based tests: mutated cards, specs and configs give a NeurocodeError naming what is wrong,
or a valid result -- never another exception, never a silent NaN."""

import json
import math
import tomllib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from neurocode.brian.builder import initial_values
from neurocode.cards import ModelCard, card_from_string, load_card
from neurocode.errors import ConfigError, ModelCardError, NeurocodeError
from neurocode.spec import NetworkSpec
from neurocode.training.loop import fit
from neurocode.training.ttfs import build_ttfs, load_config
from neurocode.io import to_toml

#: Slow lane: hundreds of mutated inputs, Brian2 runs among them (about a minute); run by make test,
#: not make test-fast.
pytestmark = pytest.mark.slow

#: Fast and reproducible; no shrinking, so that a failure is reported in seconds (the draws are printed).
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: Values a careless or hostile file may hold: non-finite, negative, huge, wrong types, payloads.
BAD = [math.nan, math.inf, -math.inf, 0, 0.0, -1, -1e300, 1e300, 10 ** 12, "", "abc", "nan", "-2*ms", "0*ms",
       "1e999*ms", "5*mV", "().__class__.__base__.__subclasses__()", [], [1, "x"], {}, {"a": 1}, True]
VALUES = st.one_of(st.sampled_from(BAD), st.floats(), st.integers(-10 ** 6, 10 ** 6), st.text(max_size=8))


def paths(tree, prefix=()):
    """Every key path of a nested dict (tables and leaves)."""
    out = []
    for key, value in tree.items():
        out.append(prefix + (key,))
        if isinstance(value, dict):
            out += paths(value, prefix + (key,))
    return out


def mutate(data, tree):
    """Apply one to three deletions or replacements (drawn by hypothesis) to a copy of ``tree``."""
    tree = json.loads(json.dumps(tree))
    for _ in range(data.draw(st.integers(1, 3))):
        choices = paths(tree)
        if not choices:
            break
        path = data.draw(st.sampled_from(choices))
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(VALUES)
    return tree


def outcome(call):
    """The result of ``call``, or the NeurocodeError it raised (any other exception fails the test)."""
    try:
        return call()
    except NeurocodeError as exc:
        assert str(exc).strip()
        return exc


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_mutated_cards_are_refused_naming_the_field_or_give_finite_populations(data):
    name = data.draw(st.sampled_from(["lif", "alif", "izhikevich", "coba_lif"]))
    tree = mutate(data, tomllib.loads(load_card(name).text))
    try:
        text = to_toml(tree)
    except TypeError:               # a value TOML cannot hold (None): the mutation is not a file
        return
    card = outcome(lambda: card_from_string(text, name=name))
    if isinstance(card, ModelCardError):
        assert card.field and card.problem
        return
    assert isinstance(card, ModelCard)
    spec = NetworkSpec(dt=1e-4, seed=0)
    pop = outcome(lambda: spec.add_population("exc", card, 20))
    if isinstance(pop, NeurocodeError):
        return
    for key, values in pop.params.items():
        assert np.isfinite(values).all(), key
        bound = card.lower_bound(key)
        if bound is not None:
            assert (values >= 0).all() if bound[1] else (values > 0).all(), key
    init = outcome(lambda: initial_values(pop))
    if not isinstance(init, NeurocodeError):
        assert all(isinstance(v, str) or np.isfinite(v).all() for v in init.values())


def saved_spec(tmp_path):
    spec = NetworkSpec(dt=1e-4, seed=0)
    spec.add_input("in", 3, indices=[0, 1, 2], times=[1e-3, 2e-3, 3e-3])
    spec.add_population("exc", "lif", 4)
    spec.connect("in", "exc", weight="0.5*nA", delay="1*ms")
    return spec.save(tmp_path / "net.npz")


def mutated_spec_file(data, path):
    """Rewrite the saved spec at ``path`` with a mutated header or a mutated array."""
    arrays = dict(np.load(path, allow_pickle=False))
    header = json.loads(bytes(arrays.pop("header")).decode())
    if data.draw(st.booleans()):
        header = mutate(data, header)
    else:
        key = data.draw(st.sampled_from(sorted(arrays)))
        if data.draw(st.integers(0, 4)) == 0:
            del arrays[key]
        else:
            values = arrays[key].astype(np.float64)
            values[data.draw(st.integers(0, values.size - 1))] = data.draw(
                st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, -1e300, 1.5e-4, 7.0]))
            arrays[key] = values
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_mutated_spec_files_are_refused_naming_the_file_or_load_with_valid_values(tmp_path_factory, data):
    path = mutated_spec_file(data, saved_spec(tmp_path_factory.mktemp("spec")))
    spec = outcome(lambda: NetworkSpec.load(path))
    if isinstance(spec, NeurocodeError):
        assert str(path) in str(spec)
        return
    assert 0 < spec.dt < math.inf
    for pop in spec.populations.values():
        assert all(np.isfinite(v).all() for v in pop.params.values())
    for proj in spec.projections:
        assert np.isfinite(proj.weights).all()
        if proj.delays is not None:
            steps = proj.delays / spec.dt
            assert (proj.delays >= 0).all() and np.allclose(steps, np.round(steps))
    for inp in spec.inputs.values():
        assert np.isfinite(inp.times).all() and (inp.times >= 0).all()


@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_mutated_spec_files_that_load_run_in_brian2_without_silent_nan(tmp_path_factory, data):
    from neurocode.brian import simulate

    path = saved_spec(tmp_path_factory.mktemp("spec"))
    arrays = dict(np.load(path, allow_pickle=False))
    key = data.draw(st.sampled_from(["pop/exc/tau_m", "pop/exc/R_m", "pop/exc/v_th", "proj/in_to_exc/weights"]))
    values = arrays[key].copy()
    values[:] = data.draw(st.sampled_from([1e300, -1e300, 1e-300, 1e308, -1e308, 3.0, -3.0]))
    arrays[key] = values
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    spec = outcome(lambda: NetworkSpec.load(path))
    if isinstance(spec, NeurocodeError):
        return
    result = outcome(lambda: simulate(spec, 6e-3, progress=False, record={"exc": ["v", "I_syn"]}))
    if isinstance(result, NeurocodeError):
        assert "exc" in str(result)
        return
    assert all(np.isfinite(v).all() for v in result.states["exc"].values())


TTFS = {"seed": 0, "data": {"name": "mnist5k", "train_subset": 64, "test_subset": 32},
        "network": {"sizes": [784, 12, 10], "t_input": 1.0, "window": 1.0, "v_th": 1.0, "init_mean": 2.0,
                    "init_std": 1.0, "silent_grad": 0.0},
        "loss": {"tau_soft": 0.3, "gamma_temporal": 1e-3, "regulariser": "m_ssr", "gamma": 1e-4},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "lr_decay": 1.0, "checkpoint_every": 0,
                  "eval_batch": 32}}


@FUZZ
@given(data=st.data())
def test_mutated_configs_are_refused_naming_the_key_or_train_to_a_finite_loss(tmp_path_factory, data):
    user = mutate(data, TTFS)
    config = outcome(lambda: load_config(user))
    if isinstance(config, ConfigError):
        assert "config: " in str(config)
        return
    built = outcome(lambda: build_ttfs(config))
    if isinstance(built, NeurocodeError):
        return
    net, loss, _ = built
    n_in = config["network"]["sizes"][0]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, n_in, generator=gen, dtype=torch.float64).float() * config["network"]["t_input"]
    y = torch.randint(0, config["network"]["sizes"][-1], (16,), generator=gen)

    def loss_fn(model, xb, yb):
        return loss(model, xb, model(xb), yb)

    optimizer = torch.optim.Adam(net.parameters(), lr=config["train"]["lr"])
    history = outcome(lambda: fit(net, loss_fn, (x, y), None, tmp_path_factory.mktemp("run"), 1, optimizer,
                                  batch_size=config["train"]["batch_size"], progress=False))
    if isinstance(history, NeurocodeError):
        assert "training loss is" in str(history)
        return
    assert math.isfinite(history[-1]["train_loss"])
