"""NetworkSpec: the one object that carries a network between Brian2 and PyTorch.

A spec holds populations (a model card, a size and per-neuron parameter values),
input populations (spike times), projections (weights and optional delays) and the
time step ``dt``. All numbers are SI floats; the card says which unit each one has.
A spec is saved as one ``.npz`` file with a format version; saving is atomic.

>>> from brian2 import ms, nA
>>> spec = NetworkSpec(dt=0.1e-3, seed=1)
>>> spec.add_input("in", 20, indices=[0, 5], times=[1e-3, 2e-3])
>>> pop = spec.add_population("exc", "lif", 100)
>>> bool(15 < pop.params["tau_m"].mean() * 1e3 < 25)   # gamma-distributed around 20 ms
True
>>> proj = spec.connect("in", "exc", p=0.2, weight=0.5 * nA)
>>> proj.weights.shape == proj.i.shape
True
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from brian2 import Quantity

from neurocode.checks import check_indices, check_memory, check_size, check_values, on_grid
from neurocode.errors import ModelCardError, NetworkSpecError, NeurocodeError
from neurocode.cards.heterogeneity import Distribution
from neurocode.io import atomic_path
from neurocode.cards import ModelCard, card_from_string, load_card
from neurocode.units import dimension_name, parse_quantity
from neurocode.cards.expressions import ExpressionError, parse_expression
from brian2.core.namespace import DEFAULT_UNITS

#: Version 2 adds per-neuron initial values; version 1 files are still read.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def random_initial_values(card, params, size, rng, population="?"):
    """Per-neuron values (SI, (size,)) of the card's initial values that draw random numbers.

    ``rand()``/``randn()`` in ``[neuron.initial]`` (Brian2's CUBA example draws ``v`` so) are
    drawn here once, from ``rng`` (the spec's seed), and stored in the population, so Brian2
    and torch start from the same values. Deterministic initial values are left to the card.
    """
    namespace = {name: float(unit) for name, unit in DEFAULT_UNITS.items()}
    namespace.update(params, i=np.arange(size, dtype=np.float64), N=float(size))
    out = {}
    for var, text in card.initial.items():
        where = f"population '{population}', initial value of '{var}' ('{text}')"
        try:
            expr = parse_expression(text)
            if not expr.random:
                continue
            if not expr.names <= set(namespace):
                raise NetworkSpecError(f"{where}: a random initial value may use parameters, units, i and N "
                                       f"only, not {sorted(expr.names - set(namespace))}")
            value = expr.evaluate(namespace, rng, size)
        except ExpressionError as exc:
            raise NetworkSpecError(f"{where}: {exc}") from None
        out[var] = np.broadcast_to(np.asarray(value, dtype=np.float64), (size,)).copy()
    return out


@dataclass
class Population:
    """Neurons sharing one model card.

    ``params`` maps each card parameter to SI values (size,); ``initial`` maps state
    variables to per-neuron initial values (SI, (size,)) that both engines start from
    (variables not in it start from the card's ``[neuron.initial]``, or 0).
    """

    name: str
    card: ModelCard
    size: int
    params: dict
    initial: dict = field(default_factory=dict)

    def __post_init__(self):
        check_size(self.size, f"population '{self.name}'")
        missing = set(self.card.defaults) - set(self.params)
        extra = set(self.params) - set(self.card.defaults)
        if missing or extra:
            raise NetworkSpecError(
                f"population '{self.name}': parameters must match card '{self.card.name}' "
                f"(missing {sorted(missing)}, unknown {sorted(extra)})")
        for key, value in self.params.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (self.size,):
                raise NetworkSpecError(f"population '{self.name}': parameter '{key}' has shape "
                                       f"{value.shape}, expected ({self.size},)")
            low, inclusive = self.card.lower_bound(key) or (None, False)
            self.params[key] = check_values(value, f"population '{self.name}', parameter '{key}'", low, inclusive,
                                            unit="s")
        state_vars = set(self.card.equations.diff_eq_names) | {
            name for name in self.card.equations.names if name not in self.card.defaults
            and name not in self.card.equations.subexpr_names}
        for key, value in self.initial.items():
            if key not in state_vars:
                raise NetworkSpecError(f"population '{self.name}': initial value for '{key}', which is not a "
                                       f"state variable of card '{self.card.name}' ({sorted(state_vars)})")
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (self.size,):
                raise NetworkSpecError(f"population '{self.name}': initial value of '{key}' has shape "
                                       f"{value.shape}, expected ({self.size},)")
            self.initial[key] = check_values(value, f"population '{self.name}', initial value of '{key}'")

    @classmethod
    def sample(cls, name, card, size, rng=None, **overrides):
        """Sample per-neuron parameters from the card's heterogeneity.

        ``overrides`` set a parameter to a Brian2 quantity (homogeneous), an array of
        SI values, or a :class:`Distribution`; their units are checked against the card.
        """
        card = card if isinstance(card, ModelCard) else load_card(card)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        unknown = set(overrides) - set(card.defaults)
        if unknown:
            raise NetworkSpecError(f"population '{name}': card '{card.name}' has no parameter(s) "
                                   f"{sorted(unknown)}; it has {card.parameters}")
        params = {}
        for key, default in card.defaults.items():
            value = overrides.get(key, card.heterogeneity.get(key, default))
            if isinstance(value, Distribution):
                if value.dim is not None and value.dim is not default.dim:
                    raise NetworkSpecError(f"population '{name}': distribution for '{key}' has units "
                                           f"of {dimension_name(value.dim)}, expected {dimension_name(default.dim)}")
                params[key] = value.sample(size, rng)
            elif isinstance(value, np.ndarray) and not isinstance(value, Quantity):
                params[key] = value
            else:
                q = parse_quantity(value)
                if q.dim is not default.dim:
                    raise NetworkSpecError(f"population '{name}': '{key}' = {value!s} has units of "
                                           f"{dimension_name(q.dim)}, expected {dimension_name(default.dim)}")
                params[key] = np.full(size, float(q))
        return cls(name, card, size, params, random_initial_values(card, params, size, rng, name))


@dataclass
class InputPopulation:
    """A spike source: neuron ``indices`` fire at ``times`` (seconds)."""

    name: str
    size: int
    indices: np.ndarray
    times: np.ndarray

    def __post_init__(self):
        check_size(self.size, f"input '{self.name}'")
        self.indices = check_indices(self.indices, f"input '{self.name}', indices")
        self.times = np.asarray(self.times, dtype=np.float64)
        if self.indices.shape != self.times.shape or self.indices.ndim != 1:
            raise NetworkSpecError(f"input '{self.name}': indices {self.indices.shape} and times "
                                   f"{self.times.shape} must be 1-D arrays of the same length")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.size):
            raise NetworkSpecError(f"input '{self.name}': indices must lie in [0, {self.size})")
        check_values(self.times, f"input '{self.name}', spike times", low=0.0, inclusive=True, unit="s")


@dataclass
class Projection:
    """Synapses from ``source`` to ``target`` in coordinate form: ``i[k] -> j[k]``.

    ``weights`` are SI values in the unit of the target card's weight; ``delays`` (seconds)
    is ``None`` or one value per synapse.
    """

    source: str
    target: str
    i: np.ndarray
    j: np.ndarray
    weights: np.ndarray
    delays: np.ndarray | None = None
    name: str = ""

    def __post_init__(self):
        self.i = check_indices(self.i, f"projection {self.source}->{self.target}, i")
        self.j = check_indices(self.j, f"projection {self.source}->{self.target}, j")
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if self.delays is not None:
            self.delays = np.asarray(self.delays, dtype=np.float64)
        shapes = {a.shape for a in (self.i, self.j, self.weights) +
                  (() if self.delays is None else (self.delays,))}
        if len(shapes) != 1 or self.i.ndim != 1:
            raise NetworkSpecError(f"projection {self.source}->{self.target}: i, j, weights and "
                                   f"delays must be 1-D arrays of one length, got {sorted(shapes)}")
        self.name = self.name or f"{self.source}_to_{self.target}"
        check_values(self.weights, f"projection '{self.name}', weights")
        if self.delays is not None:
            check_values(self.delays, f"projection '{self.name}', delays", low=0.0, inclusive=True, unit="s")

    @classmethod
    def from_dense(cls, source, target, weights, delays=None, name=""):
        """All-to-all projection from a (n_source, n_target) weight matrix."""
        weights = np.asarray(weights, dtype=np.float64)
        i, j = np.indices(weights.shape)
        delays = None if delays is None else np.broadcast_to(delays, weights.shape).ravel()
        return cls(source, target, i.ravel(), j.ravel(), weights.ravel(), delays, name)

    def dense(self, shape):
        """Weights as a dense (n_source, n_target) matrix; absent synapses are 0."""
        out = np.zeros(shape)
        np.add.at(out, (self.i, self.j), self.weights)
        return out


#: How samples enter a network (:class:`Encoding`).
ENCODINGS = ("latency", "spike_steps", "current")


@dataclass(frozen=True)
class Encoding:
    """How a sample enters the network: a typed, saved field of a spec.

    ``kind``: ``"latency"`` (exact TTFS: input ``k`` spikes once at ``t_input * (1 - x_k)``),
    ``"spike_steps"`` (frames: input ``k`` spikes at step ``s`` when ``x[s, k] = 1``, i.e. at
    ``s * dt``) or ``"current"`` (analog frames scaling the input weights' effect each step).
    ``population`` is the input population; ``t_input`` (s) the latency window; ``steps`` the
    number of frames per sample.
    """

    kind: str
    population: str
    t_input: float = 0.0
    steps: int = 0

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise NetworkSpecError(f"encoding kind {self.kind!r}: choose one of {list(ENCODINGS)}")
        if not (np.isfinite(self.t_input) and self.t_input >= 0) or int(self.steps) < 0:
            raise NetworkSpecError(f"encoding: t_input must be a finite time >= 0 s and steps >= 0, got "
                                   f"t_input={self.t_input!r}, steps={self.steps!r}")


@dataclass(frozen=True)
class Readout:
    """How the network answers: a typed, saved field of a spec.

    ``rule`` names the decision rule (``"first_spike"``:
    :func:`neurocode.objectives.decision.first_spike_decision`) applied to ``population``;
    ``gain``, ``theta`` and ``activation`` are the rank-coding read-out's parameters (logits
    ``gain * distance to threshold``, crossing ``theta``), recorded for reproduction.
    """

    rule: str
    population: str
    gain: float = 0.0
    theta: float = 0.0
    activation: str = ""

    def __post_init__(self):
        from neurocode.objectives.decision import RULES
        if self.rule not in RULES:
            raise NetworkSpecError(f"read-out rule {self.rule!r}: choose one of {list(RULES)}")


@dataclass
class NetworkSpec:
    """Populations, inputs and projections, with the time step ``dt`` (seconds) and a seed."""

    dt: float = 0.1e-3
    seed: int = 0
    populations: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    projections: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    encoding: Encoding | None = None
    readout: Readout | None = None

    def __post_init__(self):
        self.dt = float(parse_quantity(self.dt)) if isinstance(self.dt, str) else float(self.dt)
        if not 0 < self.dt < float("inf"):
            raise NetworkSpecError(f"dt must be > 0 s and finite, got {self.dt}")
        #: The spec's random generator, seeded by ``seed``: every random draw made while the
        #: network is built (heterogeneous parameters, connections, random initial values)
        #: comes from it, in the order of the building calls.
        self.rng = np.random.default_rng(self.seed)

    # -- building -------------------------------------------------------------------------
    def _check_new_name(self, name):
        if name in self.populations or name in self.inputs:
            raise NetworkSpecError(f"a population or input named '{name}' already exists")

    def add_population(self, name, card, size, **overrides):
        """Add ``size`` neurons of ``card`` (name, path or ModelCard), sampled from the spec's seed."""
        self._check_new_name(name)
        pop = Population.sample(name, card, size, self.rng, **overrides)
        self.populations[name] = pop
        return pop

    def add_input(self, name, size, indices=(), times=()):
        """Add an input population of ``size`` spike sources."""
        self._check_new_name(name)
        self.inputs[name] = InputPopulation(name, size, indices, times)

    def size(self, name):
        """Number of neurons in a population or input."""
        if name in self.populations:
            return self.populations[name].size
        if name in self.inputs:
            return self.inputs[name].size
        raise NetworkSpecError(f"no population or input named '{name}'; "
                               f"have {sorted(self.populations) + sorted(self.inputs)}")

    def add_projection(self, projection, round_delays=False):
        """Add a projection after checking its endpoints, indices and weight units.

        Delays must be whole numbers of time steps; ``round_delays=True`` rounds them instead.
        """
        n_src, n_tgt = self.size(projection.source), self.size(projection.target)
        if projection.target not in self.populations:
            raise NetworkSpecError(f"projection target '{projection.target}' must be a neuron population")
        if projection.i.size and (projection.i.max() >= n_src or projection.j.max() >= n_tgt
                                  or projection.i.min() < 0 or projection.j.min() < 0):
            raise NetworkSpecError(f"projection {projection.name}: indices out of range for "
                                   f"{n_src} sources and {n_tgt} targets")
        if any(p.name == projection.name for p in self.projections):
            raise NetworkSpecError(f"a projection named '{projection.name}' already exists")
        if projection.delays is not None:
            projection.delays = on_grid(projection.delays, self.dt, f"projection '{projection.name}', delays",
                                        rounding=round_delays)
        self.projections.append(projection)
        return projection

    def connect(self, source, target, p=1.0, weight=None, delay=None, autapses=True, name="", round_delays=False):
        """Random (Erdos-Renyi) projection with connection probability ``p``.

        ``weight`` and ``delay`` are Brian2 quantities (or a Distribution for weights);
        the weight's units must match the target card's synapse weight. Delays off the
        time grid are an error unless ``round_delays``. As in Brian2's
        ``Synapses.connect(p=...)``, a population connected to itself may get autapses
        (``i == j``); ``autapses=False`` leaves them out.
        """
        n_src, n_tgt = self.size(source), self.size(target)
        check_memory(n_src * n_tgt * 9, f"connecting '{source}' ({n_src}) to '{target}' ({n_tgt}) draws a "
                                        "dense connection mask")
        mask = self.rng.random((n_src, n_tgt)) < p
        if source == target and not autapses:
            np.fill_diagonal(mask, False)
        i, j = np.nonzero(mask)
        card = self.populations[target].card if target in self.populations else None
        if card is None:
            raise NetworkSpecError(f"projection target '{target}' must be a neuron population")
        weights = self._values(weight, i.size, card.weight_dim, f"weight of {source}->{target}")
        delays = None if delay is None else self._values(delay, i.size, parse_quantity("1*second").dim,
                                                         f"delay of {source}->{target}")
        return self.add_projection(Projection(source, target, i, j, weights, delays, name), round_delays)

    def _values(self, value, n, dim, what):
        if isinstance(value, Distribution):
            if value.dim is not None and value.dim is not dim:
                raise NetworkSpecError(f"{what}: units of {dimension_name(value.dim)}, expected {dimension_name(dim)}")
            return value.sample(n, self.rng)
        q = parse_quantity(value)
        if q.dim is not dim:
            raise NetworkSpecError(f"{what}: {value!s} has units of {dimension_name(q.dim)}, "
                                   f"expected {dimension_name(dim)}")
        return np.full(n, float(q))

    def projection(self, name):
        """The projection called ``name``."""
        for proj in self.projections:
            if proj.name == name:
                return proj
        raise NetworkSpecError(f"no projection named '{name}'; have {[p.name for p in self.projections]}")

    # -- saving and loading ------------------------------------------------------------------
    def save(self, path):
        """Write the spec to ``path`` (``.npz``) atomically: a temp file, then a rename."""
        path = Path(path)
        arrays, header = {}, {"format_version": FORMAT_VERSION, "dt": self.dt, "seed": self.seed,
                              "metadata": self.metadata, "cards": {}, "populations": [],
                              "encoding": None if self.encoding is None else asdict(self.encoding),
                              "readout": None if self.readout is None else asdict(self.readout),
                              "inputs": [], "projections": []}
        for pop in self.populations.values():
            header["cards"][pop.card.name] = {"text": pop.card.text, "sha256": pop.card.sha256,
                                              "origin": pop.card.origin}
            header["populations"].append({
                "name": pop.name, "card": pop.card.name, "size": pop.size,
                "units": {k: dimension_name(v.dim) for k, v in pop.card.defaults.items()}})
            header["populations"][-1]["initial"] = sorted(pop.initial)
            for key, value in pop.params.items():
                arrays[f"pop/{pop.name}/{key}"] = value
            for key, value in pop.initial.items():
                arrays[f"init/{pop.name}/{key}"] = value
        for inp in self.inputs.values():
            header["inputs"].append({"name": inp.name, "size": inp.size})
            arrays[f"input/{inp.name}/indices"] = inp.indices
            arrays[f"input/{inp.name}/times"] = inp.times
        for proj in self.projections:
            card = self.populations[proj.target].card
            header["projections"].append({"name": proj.name, "source": proj.source, "target": proj.target,
                                          "weight_unit": dimension_name(card.weight_dim),
                                          "has_delays": proj.delays is not None})
            for key in ("i", "j", "weights") + (("delays",) if proj.delays is not None else ()):
                arrays[f"proj/{proj.name}/{key}"] = getattr(proj, key)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read a spec written by :meth:`save`; checks version, shapes, units and values.

        Every problem -- a missing header key or array, a corrupt file, an impossible value,
        a bad stored card -- raises a :class:`~neurocode.errors.NeurocodeError` naming the file.
        """
        path = Path(path)
        if not path.is_file():
            raise NetworkSpecError(f"no NetworkSpec file at {path}")
        try:
            return cls._read(path)
        except ModelCardError as exc:
            raise ModelCardError(f"{path}:{exc.card}", exc.field, exc.problem) from None
        except NeurocodeError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise NetworkSpecError(f"{path}: {exc}") from None
        except KeyError as exc:
            key = str(exc.args[0]).replace(" is not a file in the archive", "")
            raise NetworkSpecError(f"{path}: lacks '{key}' (a header key or an array): the file is truncated "
                                   "or was not written by NetworkSpec.save") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, AttributeError, IndexError, TypeError,
                ValueError) as exc:
            raise NetworkSpecError(f"{path}: corrupt or malformed NetworkSpec file ({type(exc).__name__}: "
                                   f"{exc})") from None

    @classmethod
    def _read(cls, path):
        try:
            data = np.load(path, allow_pickle=False)
            header = json.loads(bytes(data["header"]).decode())
        except Exception as exc:
            raise NetworkSpecError(f"{path} is not a NetworkSpec file: {exc}") from None
        version = header.get("format_version")
        if version not in READABLE_VERSIONS:
            raise NetworkSpecError(f"{path}: format version {version} is not supported "
                                   f"(this neurocode reads versions {list(READABLE_VERSIONS)})")
        spec = cls(dt=header["dt"], seed=header["seed"], metadata=header["metadata"])
        try:
            if version == 1:
                spec.encoding, spec.readout = _typed_fields_of_version_1(header["metadata"])
            else:
                spec.encoding = None if header["encoding"] is None else Encoding(**header["encoding"])
                spec.readout = None if header["readout"] is None else Readout(**header["readout"])
        except (KeyError, TypeError) as exc:
            raise NetworkSpecError(f"{path}: encoding or read-out field is malformed ({exc})") from None
        cards = {}
        for name, c in header["cards"].items():
            if hashlib.sha256(c["text"].encode()).hexdigest() != c["sha256"]:
                raise NetworkSpecError(f"card '{name}': the stored text does not match its stored hash "
                                       "(the file was edited after it was saved)")
            cards[name] = card_from_string(c["text"], name=name, source=f"{path}:{name}", origin=c.get("origin"))
        for entry in header["populations"]:
            card = cards[entry["card"]]
            units = {k: dimension_name(v.dim) for k, v in card.defaults.items()}
            if units != entry["units"]:
                raise NetworkSpecError(f"{path}: population '{entry['name']}' has units {entry['units']} "
                                       f"but its card says {units}")
            params = {k: data[f"pop/{entry['name']}/{k}"] for k in card.defaults}
            initial = {k: data[f"init/{entry['name']}/{k}"] for k in entry.get("initial", [])}
            spec.populations[entry["name"]] = Population(entry["name"], card, entry["size"], params, initial)
        for entry in header["inputs"]:
            spec.inputs[entry["name"]] = InputPopulation(
                entry["name"], entry["size"], data[f"input/{entry['name']}/indices"],
                data[f"input/{entry['name']}/times"])
        for entry in header["projections"]:
            key = f"proj/{entry['name']}/"
            proj = Projection(entry["source"], entry["target"], data[key + "i"], data[key + "j"],
                              data[key + "weights"], data[key + "delays"] if entry["has_delays"] else None,
                              entry["name"])
            unit = dimension_name(spec.populations[proj.target].card.weight_dim)
            if unit != entry["weight_unit"]:
                raise NetworkSpecError(f"{path}: projection '{proj.name}' weights are in "
                                       f"{entry['weight_unit']} but the card's weight is in {unit}")
            spec.add_projection(proj)
        return spec

    def stale_cards(self, directory=None):
        """Names of cards whose file differs from the text stored in this spec (see :mod:`neurocode.cards.stale`)."""
        from neurocode.cards.stale import changed_cards
        return changed_cards(self, directory)


def _typed_fields_of_version_1(meta):
    """Encoding and read-out of a version-1 file, whose metadata described them in prose."""
    if meta.get("model") == "TTFSNetwork":
        return Encoding("latency", "in", t_input=float(meta["t_input"])), Readout("first_spike", "out")
    if meta.get("task") == "rank_coding" or ("decision" in meta and "steps" in meta):
        inp, dec = meta.get("input") or {}, meta.get("decision") or {}
        kind = "spike_steps" if inp.get("encoding", "spikes") == "spikes" else "current"
        return (Encoding(kind, inp.get("population", "in"), steps=int(meta.get("steps") or 0)),
                Readout("first_spike", dec.get("population", "out"), float(dec.get("readout_gain", 0.0)),
                        float(dec.get("theta", 0.0)), dec.get("activation", "")))
    return None, None
