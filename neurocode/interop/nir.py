"""NetworkSpec <-> NIR (Neuromorphic Intermediate Representation) graphs.

NIR states each neuron as a continuous-time ODE without units; the frameworks that
export it (snnTorch, Norse) step it by forward Euler and feed a neuron, in each step, the
weighted spikes of that step (1 for a spike) as its input ``S`` -- a pulse that lasts one
step ``dt``. neurocode uses that convention both ways (``docs/nir.md``):

* ``LIF``: ``tau dv/dt = v_leak - v + r S``; ``CubaLIF``: ``tau_syn dI/dt = -I + w_in S``,
  ``tau_mem dv/dt = v_leak - v + r I``; ``IF``: ``dv/dt = r S``; all reset ``v`` to
  ``v_reset`` when ``v > v_threshold``.
* A population maps onto one of them when its card has a membrane ``v`` (threshold
  ``v > ...``, reset ``v = ...``, no refractoriness) and one current ``I`` that ``on_pre``
  increments by the weight, both linear: ``dI/dt = -I/tau_syn + bias/dt`` and
  ``dv/dt = (v_leak - v + r I)/tau_mem`` (``CubaLIF``, or ``LIF`` when ``tau_syn = dt``:
  the current lasts one step) or ``dv/dt = r I`` (``IF``, with ``tau_syn = dt``). The
  shipped ``lif`` card (with ``t_ref = 0``) is a ``CubaLIF``; cards that do not fit raise
  :class:`~neurocode.errors.NetworkSpecError` naming the population and the reason.
* Values are written as SI floats of the card's quantities (volts, amperes, ohms,
  seconds); a spike adds the weight ``w`` to ``I``, so a projection becomes a ``Linear``
  node with ``W = w`` (an ``Affine`` node carries the target's ``bias``) and ``CubaLIF``
  gets ``w_in = tau_syn/dt``; delays become ``Delay`` nodes.
* Import builds populations of the ``nir_cubalif`` card (``LIF``: ``tau_syn = dt``) and
  the ``nir_cubaif`` card (``IF``), stepped by forward Euler as the frameworks step them;
  a ``CubaLIF``'s weights are scaled by ``w_in dt/tau_syn``. Spike times of inputs are no
  part of NIR: imported inputs have none.

>>> from neurocode.spec import NetworkSpec
>>> spec = NetworkSpec(dt=1e-4, seed=0)
>>> spec.add_input("x", 3)
>>> _ = spec.add_population("h", "nir_cubalif", 4, tau_syn="1e-4*second")
>>> _ = spec.connect("x", "h", p=1.0, weight="0.5")
>>> graph = to_nir(spec)
>>> sorted(graph.nodes), type(graph.nodes["h"]).__name__
(['h', 'h_output', 'x', 'x_to_h'], 'LIF')
>>> back = from_nir(graph, dt=1e-4)
>>> bool((back.projection("x_to_h").weights == 0.5).all())
True
"""

from __future__ import annotations

import ast
import logging

import numpy as np
import sympy
import torch
from brian2.core.namespace import DEFAULT_UNITS
from brian2.parsing.sympytools import str_to_sympy

from neurocode.cards import load_card
from neurocode.errors import NetworkSpecError
from neurocode.spec import NetworkSpec, Projection
from neurocode.torch.codegen import TranslationError, parse_statements
from neurocode.torch.runner import synaptic_effects

log = logging.getLogger(__name__)

#: Card used on import for each NIR neuron node.
IMPORT_CARDS = {"LIF": "nir_cubalif", "CubaLIF": "nir_cubalif", "IF": "nir_cubaif"}
#: NIR node types that carry weights or delays between neurons, or pass signals through.
TRANSFER = ("Linear", "Affine", "Delay")


def _nir():
    try:
        import nir
    except ImportError:
        raise NetworkSpecError("NIR support needs the 'nir' package: pip install 'neurocode[nir]'") from None
    return nir


# -- what a population means in NIR's terms ----------------------------------------------------
class _Card:
    """Evaluates a population's card expressions per neuron (SI floats, shape (n,))."""

    def __init__(self, pop, dt):
        self.pop, self.dt = pop, dt

    def fail(self, problem):
        raise NetworkSpecError(f"population '{self.pop.name}' (card '{self.pop.card.name}') cannot be "
                               f"expressed in NIR: {problem}")

    def value(self, expr):
        expr = str_to_sympy(expr) if isinstance(expr, str) else expr
        symbols = sorted(expr.free_symbols, key=str)
        args = []
        for s in symbols:
            name = str(s)
            if name in self.pop.params:
                args.append(self.pop.params[name])
            elif name == "dt":
                args.append(self.dt)
            elif name in DEFAULT_UNITS:
                args.append(float(DEFAULT_UNITS[name]))
            else:
                self.fail(f"'{expr}' depends on '{name}', which is neither a parameter nor a unit")
        fn = sympy.lambdify(symbols, expr, "numpy", dummify=True)
        return np.broadcast_to(np.asarray(fn(*args), dtype=np.float64), (self.pop.size,)).copy()

    def linear(self, var, states):
        """``d var/dt`` as ``(coefficient per state variable, constant)``, sympy expressions."""
        rhs = str_to_sympy(self.pop.card.equations[var].expr.code)
        syms = {name: next((s for s in rhs.free_symbols if str(s) == name), sympy.Symbol(name)) for name in states}
        coeffs = {}
        for name, sym in syms.items():
            c = sympy.diff(rhs, sym)
            if c.free_symbols & set(syms.values()):
                self.fail(f"d{var}/dt is not linear in {sorted(states)}")
            coeffs[name] = c
        return coeffs, rhs.subs({sym: 0 for sym in syms.values()})


def _membrane(card, c):
    """Name of the membrane variable and the threshold expression (``v > expr``)."""
    try:
        node = ast.parse(card.threshold, mode="eval").body
    except SyntaxError:
        node = None
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Gt)
            and isinstance(node.left, ast.Name) and node.left.id in card.state_variables):
        c.fail(f"threshold '{card.threshold}' is not 'v > expression' on a state variable")
    return node.left.id, ast.unparse(node.comparators[0])


def neuron_values(pop, dt):
    """The NIR node type and values (SI floats, (n,) arrays) of a population.

    Returns ``(kind, values)`` with ``kind`` one of ``"LIF"``, ``"CubaLIF"``, ``"IF"``
    and ``values`` the node's parameters plus ``"bias"`` (constant input per step, for an
    ``Affine`` node). Raises :class:`NetworkSpecError` naming the population and what NIR
    cannot express.
    """
    card, c = pop.card, _Card(pop, dt)
    if card.kind != "spiking":
        c.fail("it is a rate card (NIR's neuron nodes spike)")
    v, threshold = _membrane(card, c)
    try:
        reset = parse_statements(card.reset or "", "reset")
        effects = synaptic_effects(card, torch.float64)
    except TranslationError as exc:
        c.fail(str(exc))
    if len(reset) != 1 or reset[0][:2] != (v, "="):
        c.fail(f"reset '{card.reset}' is not the single statement '{v} = expression'")
    probe = torch.tensor([1.5, -0.25], dtype=torch.float64)
    if len(effects) != 1 or effects[0][1] != 1.0 or not torch.equal(
            torch.as_tensor(effects[0][2](probe), dtype=torch.float64).expand(2), probe):
        c.fail(f"on_pre '{card.on_pre}' does not add the weight to one variable")
    current = effects[0][0]
    if current == v:
        c.fail(f"on_pre adds the weight to the membrane '{v}' itself; NIR neurons take input as a current")
    others = sorted(set(card.equations.names) - {v, current})
    if others:
        c.fail(f"variable(s) {others} have no NIR counterpart (NIR neurons have a membrane and an input current)")
    if card.refractory:
        ref = c.value(card.refractory)
        if ref.any():
            c.fail(f"refractory period '{card.refractory}' (up to {ref.max() * 1e3:g} ms); NIR neurons have none")
    states = [v, current]
    # tau_syn, tau_mem, r and v_leak are formed symbolically (-1/(-1/tau) simplifies to tau), so
    # a card's own parameters come out bit for bit
    coeffs, dI_0 = c.linear(current, states)
    if c.value(coeffs[v]).any() or not (c.value(coeffs[current]) < 0).all():
        c.fail(f"d{current}/dt is not -{current}/tau_syn + constant")
    tau_syn = c.value(sympy.simplify(-1 / coeffs[current]))
    values = {"v_threshold": c.value(threshold), "v_reset": c.value(reset[0][2]),
              "bias": c.value(sympy.simplify(dI_0 * sympy.Symbol("dt")))}
    coeffs, dv_0 = c.linear(v, states)
    dv_v = c.value(coeffs[v])
    one_step = np.array_equal(tau_syn, np.full_like(tau_syn, dt))
    if not dv_v.any():
        if c.value(dv_0).any() or not one_step:
            c.fail(f"d{v}/dt = r {current} (IF) needs tau_syn = dt and no constant term")
        return "IF", {**values, "r": c.value(coeffs[current])}
    if not (dv_v < 0).all():
        c.fail(f"d{v}/dt does not decay towards a leak potential in every neuron")
    tau = sympy.simplify(-1 / coeffs[v])
    tau_mem = c.value(tau)
    values.update(r=c.value(sympy.simplify(coeffs[current] * tau)), v_leak=c.value(sympy.simplify(dv_0 * tau)))
    if one_step:
        return "LIF", {**values, "tau": tau_mem}
    return "CubaLIF", {**values, "tau_mem": tau_mem, "tau_syn": tau_syn, "w_in": tau_syn / dt}


# -- export ------------------------------------------------------------------------------------
def _neuron_node(nir, kind, values):
    keys = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
            "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
            "IF": ("r", "v_threshold", "v_reset")}[kind]
    return getattr(nir, kind)(**{k: values[k] for k in keys})


def _delay_nodes(nir, proj, n_src, n_tgt):
    """``(before, after)``: per-source and per-target delays (s) of a projection, or None."""
    if proj.delays is None:
        return None, None
    d = proj.delays
    per_tgt, per_src = np.zeros(n_tgt), np.zeros(n_src)
    per_tgt[proj.j], per_src[proj.i] = d, d
    if np.array_equal(per_tgt[proj.j], d):
        return None, nir.Delay(delay=per_tgt)
    if np.array_equal(per_src[proj.i], d):
        return nir.Delay(delay=per_src), None
    raise NetworkSpecError(f"projection '{proj.name}': delays vary within a target and within a source; "
                           "NIR's Delay node holds one delay per source or per target")


def to_nir(spec):
    """A :class:`nir.NIRGraph` of ``spec`` (see the module docstring for the mapping).

    Node names are the spec's input, population and projection names (``<projection>.delay``
    for delays, ``<population>_output`` for populations without outgoing projections);
    the graph's metadata records ``dt`` (s).

    Raises
    ------
    NetworkSpecError
        A population whose card has no NIR counterpart, a projection with several synapses
        between one pair of neurons, delays that NIR's ``Delay`` node cannot hold, or a
        ``bias`` on a population without incoming projections.
    """
    nir = _nir()
    nodes, edges, biases = {}, [], {}
    for inp in spec.inputs.values():
        nodes[inp.name] = nir.Input(input_type=np.array([inp.size]))
    for pop in spec.populations.values():
        kind, values = neuron_values(pop, spec.dt)
        nodes[pop.name] = _neuron_node(nir, kind, values)
        biases[pop.name] = values["bias"]
    for proj in spec.projections:
        n_src, n_tgt = spec.size(proj.source), spec.size(proj.target)
        if np.unique(proj.i * n_tgt + proj.j).size != proj.i.size:
            raise NetworkSpecError(f"projection '{proj.name}' has several synapses between one pair of "
                                   "neurons; a NIR weight matrix holds one")
        weight = proj.dense((n_src, n_tgt)).T
        bias = biases.pop(proj.target, None)
        nodes[proj.name] = nir.Linear(weight=weight) if bias is None or not bias.any() else \
            nir.Affine(weight=weight, bias=bias)
        before, after = _delay_nodes(nir, proj, n_src, n_tgt)
        chain = [proj.source] + ([f"{proj.name}.delay"] if before else []) + [proj.name] + \
            ([f"{proj.name}.delay"] if after else []) + [proj.target]
        if before or after:
            nodes[f"{proj.name}.delay"] = before or after
        edges += list(zip(chain[:-1], chain[1:]))
    left = sorted(name for name, b in biases.items() if b.any())
    if left:
        raise NetworkSpecError(f"population(s) {left} have a constant input (bias) but no incoming projection "
                               "whose Affine node could carry it")
    sources = {p.source for p in spec.projections}
    for pop in spec.populations.values():
        if pop.name not in sources:
            nodes[f"{pop.name}_output"] = nir.Output(output_type=np.array([pop.size]))
            edges.append((pop.name, f"{pop.name}_output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": spec.dt})


def write_nir(spec, path):
    """Export ``spec`` and write it to ``path`` (NIR's HDF5 format)."""
    _nir().write(path, to_nir(spec))
    return path


# -- import ------------------------------------------------------------------------------------
def _flatten(graph, prefix=""):
    """Nodes and edges of ``graph`` with nested graphs inlined (names ``outer.inner``).

    A nested graph's ``Input`` and ``Output`` nodes become pass-through nodes (None).
    """
    nir = _nir()
    nodes, edges, ports = {}, [], {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(node, full + ".")
            nodes.update(inner)
            edges += inner_edges
            ports[name] = ([full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)],
                           [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)])
            for key in ports[name][0] + ports[name][1]:
                nodes[key] = None
        else:
            nodes[full] = node
    for a, b in graph.edges:
        outs = ports[a][1] if a in ports else [prefix + a]
        ins = ports[b][0] if b in ports else [prefix + b]
        edges += [(x, y) for x in outs for y in ins]
    return nodes, edges


def _paths(nodes, edges, source):
    """Every chain of transfer nodes from ``source`` to a neuron node.

    Yields ``(target, W or None, bias or None, d_src, d_tgt, has_delay, weight_node)``:
    ``W`` (n_target, n_source) composes the chain's matrices (None: one-to-one), ``d_src``
    and ``d_tgt`` are delays (s) on the source and target side.
    """
    out = {}
    for a, b in edges:
        out.setdefault(a, []).append(b)
    stack = [(source, None, None, 0.0, 0.0, False, None, ())]
    while stack:
        name, W, bias, d_src, d_tgt, delayed, weight_node, seen = stack.pop()
        for nxt in out.get(name, []):
            node = nodes[nxt]
            kind = type(node).__name__ if node is not None else None
            if nxt in seen:
                raise NetworkSpecError(f"NIR graph: a cycle through '{nxt}' contains no neuron")
            if kind in IMPORT_CARDS:
                yield nxt, W, bias, d_src, d_tgt, delayed, weight_node
                continue
            if kind == "Output":
                continue
            state = [nxt, W, bias, d_src, d_tgt, delayed, weight_node, seen + (nxt,)]
            if kind in ("Linear", "Affine"):
                w = np.asarray(node.weight, dtype=np.float64)
                if w.ndim != 2:
                    raise NetworkSpecError(f"NIR node '{nxt}': weight of shape {w.shape}; "
                                           "neurocode imports 2-D weights")
                if np.ndim(d_tgt) and not np.all(d_tgt == d_tgt[0]):
                    raise NetworkSpecError(f"NIR node '{nxt}': a Linear after per-neuron delays cannot be "
                                           "expressed as one delay per synapse")
                carried = None if bias is None else w @ bias
                if kind == "Affine":
                    b = np.asarray(node.bias, dtype=np.float64)
                    carried = b if carried is None else b + carried
                state[1], state[2] = (w if W is None else w @ W), carried
                state[3] = d_src + (d_tgt[0] if np.ndim(d_tgt) else d_tgt)
                state[4], state[6] = 0.0, nxt
            elif kind == "Delay":
                d = np.asarray(node.delay, dtype=np.float64)
                state[5] = True
                if W is None:
                    state[3] = d_src + d
                else:
                    state[4] = d_tgt + d
            elif kind is not None:
                raise NetworkSpecError(f"NIR node '{nxt}' is a {kind}; neurocode imports Input, Output, "
                                       f"{', '.join(IMPORT_CARDS)}, {', '.join(TRANSFER)} and nested graphs")
            stack.append(tuple(state))


def _size(name, node, candidates):
    sizes = {int(np.size(getattr(node, k))) for k in vars(node)
             if isinstance(getattr(node, k), np.ndarray) and np.size(getattr(node, k)) > 1}
    sizes |= set(candidates)
    if len(sizes) != 1:
        raise NetworkSpecError(f"NIR node '{name}': cannot tell its size (parameters and weights say {sorted(sizes)})")
    return sizes.pop()


def _population_params(kind, node, n, dt):
    def arr(x):
        return np.broadcast_to(np.asarray(x, dtype=np.float64).reshape(-1) if np.size(x) > 1
                               else np.asarray(x, dtype=np.float64).reshape(()), (n,)).copy()
    if kind == "IF":
        params = {"tau_syn": np.full(n, dt), "r": arr(node.r)}
    else:
        params = {"tau_mem": arr(node.tau if kind == "LIF" else node.tau_mem), "r": arr(node.r),
                  "v_leak": arr(node.v_leak),
                  "tau_syn": np.full(n, dt) if kind == "LIF" else arr(node.tau_syn)}
    params.update(v_threshold=arr(node.v_threshold), v_reset=arr(node.v_reset), bias=np.zeros(n))
    scale = arr(node.w_in) / (params["tau_syn"] / dt) if kind == "CubaLIF" else np.ones(n)
    return params, scale


def from_nir(graph, dt=None):
    """A :class:`~neurocode.spec.NetworkSpec` from a NIR graph (or a path to a ``.nir`` file).

    Parameters
    ----------
    graph : nir.NIRGraph or str or Path
    dt : float, optional
        Time step (s) the graph was exported for -- snnTorch's exporter assumes 1e-4 s; the
        weights of ``CubaLIF`` nodes and the one-step current of ``LIF`` and ``IF`` depend on
        it. Default: ``dt`` in the graph's metadata (written by :func:`to_nir`).

    Returns
    -------
    NetworkSpec
        Inputs (no spike times) named after ``Input`` nodes, populations after neuron nodes,
        projections after the last ``Linear``/``Affine`` node on their path (synapses: the
        nonzero weights, source-major); ``metadata["nir_outputs"]`` maps each ``Output``
        node to the population that feeds it.
    """
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    if dt is None:
        if "dt" not in (graph.metadata or {}):
            raise NetworkSpecError("from_nir needs dt (s): the graph's metadata has none")
        dt = float(graph.metadata["dt"])
    nodes, edges = _flatten(graph)
    inputs = {k: int(np.prod(n.input_type["input"])) for k, n in nodes.items() if isinstance(n, nir.Input)}
    neurons = {k: n for k, n in nodes.items() if type(n).__name__ in IMPORT_CARDS}
    paths = [(src, *p) for src in list(inputs) + list(neurons) for p in _paths(nodes, edges, src)]
    rows, cols = {}, {}
    for src, tgt, W, *_ in paths:
        if W is not None:
            rows.setdefault(tgt, []).append(W.shape[0])
            cols.setdefault(src, []).append(W.shape[1])
    sizes = dict(inputs)
    for name, node in neurons.items():
        sizes[name] = _size(name, node, rows.get(name, []) + cols.get(name, []))
    spec = NetworkSpec(dt=dt, metadata={"nir_outputs": {
        b: a for a, b in edges if isinstance(nodes.get(b), nir.Output) and a in neurons}})
    for name, size in inputs.items():
        spec.add_input(name, size)
    scales = {}
    for name, node in neurons.items():
        kind = type(node).__name__
        params, scales[name] = _population_params(kind, node, sizes[name], dt)
        spec.add_population(name, load_card(IMPORT_CARDS[kind]), sizes[name], **params)
    for src, tgt, W, bias, d_src, d_tgt, delayed, weight_node in paths:
        n_src, n_tgt = sizes[src], sizes[tgt]
        W = np.eye(n_tgt, n_src) if W is None else W
        if W.shape != (n_tgt, n_src):
            raise NetworkSpecError(f"NIR path {src} -> {tgt}: weights of shape {W.shape}, expected ({n_tgt}, {n_src})")
        j, i = np.nonzero(W)
        order = np.lexsort((j, i))
        i, j = i[order], j[order]
        delays = None
        if delayed:
            delays = np.broadcast_to(d_src, (n_src,))[i] + np.broadcast_to(d_tgt, (n_tgt,))[j]
        if bias is not None:
            spec.populations[tgt].params["bias"] += np.broadcast_to(bias, (n_tgt,)) * scales[tgt]
        name = weight_node or f"{src}_to_{tgt}"
        spec.add_projection(Projection(src, tgt, i, j, W[j, i] * scales[tgt][j], delays, name))
    return spec
