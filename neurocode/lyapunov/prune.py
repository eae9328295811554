"""Lyapunov Noise Pruning (LNP) of a recurrent spiking network, and two baselines.

LNP (Chakraborty et al., ICLR 2024) prunes **before training and without a task**. The
paper's formulas could not be read here; each step below is our concrete choice (also
listed in ``docs/lyapunov.md``):

1. **Lyapunov matrix.** Per-neuron finite-time Lyapunov exponents ``lambda_i`` (1/s): the
   growth rate of a perturbation started on neuron ``i``'s membrane, under frozen Poisson
   noise, through the exact spike treatment of :mod:`neurocode.lyapunov.spiking`
   (:func:`neuron_exponents`). Each neuron gets the harmonic mean ``H_i`` of ``|lambda|``
   over itself and its neighbours; synapse ``(i, j)`` gets ``L_ij = 2 H_i H_j / (H_i + H_j)``
   (harmonic mean: dominated by the slower, more marginal end).
2. **Noise pruning of synapses.** Spectral sparsification (Spielman-Srivastava) of the
   symmetrised ``|W|`` graph: synapse ``(i, j)`` is kept with probability
   ``p_ij = min(1, rho * |w_ij| R_ij / L_ij)`` (``R_ij``: effective resistance), ``rho``
   set so that the expected number kept is the target. The sampling is the paper's; the
   *reweighting* is ours (see "Weight rescaling" below): the unbiased ``w_ij / p_ij`` of
   Spielman-Srivastava and Moore & Chaudhuri (2020) is kept as ``rescale="inverse-p"`` only.
3. **Node pruning.** Neurons of lowest betweenness centrality (``networkx``) in the
   pruned graph are removed.
4. **Eigenvector delocalisation.** A few edges (``add_fraction`` of the kept ones) are
   added greedily, from neurons with the largest to those with the smallest component of
   the leading eigenvector of ``W``, each accepted only if it lowers that eigenvector's
   inverse participation ratio.
5. **Timescale optimisation.** A random search (not the paper's Bayesian optimisation)
   over the gamma law (mean, cv) of the surviving neurons' ``tau_m``, choosing the
   candidate whose largest Lyapunov exponent is closest to 0 (edge of stability); with
   ``keep_mean`` only the cv is searched.

Baselines at equal numbers of neurons and synapses: **random** (uniform neurons, then
uniform synapses) and **activity** (of the dense network run on the task input: the most
active neurons, then the synapses of largest ``|w| x presynaptic rate``).

**Excitatory and inhibitory kept apart** (``ei=``, the same rule for all three methods).
With ``"mixed"`` (default; the paper's description) neurons and synapses of both signs
compete in one ranking or one sampling. Inhibitory synapses are the stronger ones
(``g_inh`` times), so ``|w|`` in LNP's keep probability, distance ``1/|w|`` in its
betweenness and ``|w| x rate`` in activity pruning all favour them (LNP kept 44-55 %
inhibitory synapses against the dense 20 %); uniform random pruning keeps the dense
ratio only in expectation. With ``"separate"`` excitatory and inhibitory neurons
(Dale's law: the sign of a neuron's outgoing weights, :func:`excitatory_neurons`) and
synapses are ranked or sampled within their own class, each class keeping its dense
share of the count (:func:`split_count`): LNP's step 2 solves for one ``rho`` per class
so that each class keeps the target fraction of its synapses, step 3 ranks each class
by betweenness; random pruning draws each class uniformly; activity pruning ranks each
class by rate and by ``|w| x rate``.

**Weight rescaling** (``rescale=``, the same rule for all three methods). A pruned network
keeps 5-25 % of the synapses; with their original weights its recurrent input shrinks,
and ``w / p_ij`` scales each kept synapse by its own factor (2.5x on average at 90 %
sparsity in the LNP study), which the baselines, with uniform keep probabilities, have no
counterpart for (``docs/lyapunov.md``). ``"radius"`` (default) multiplies all kept
weights by one gain so that the spectral radius of the pruned weight matrix equals the
dense network's (linear stability preserved, the relative weights untouched);
``"none"`` keeps the weights; ``"inverse-p"`` (LNP only) divides by ``p_ij``. For LNP the
gain is applied after step 4, so the added edges are scaled with the rest.

>>> from neurocode.lyapunov.hrsnn import hrsnn
>>> spec = hrsnn(n=40, p=0.2, seed=0)
>>> small = random_prune(spec, keep_neurons=30, keep_synapses=100, seed=0)
>>> small.populations["hrsnn"].size, small.projections[0].i.size
(30, 100)
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from neurocode.errors import NetworkSpecError
from neurocode.spec import NetworkSpec, Population, Projection

log = logging.getLogger(__name__)

POP, PROJ = "hrsnn", "recurrent"


def _parts(spec):
    if POP not in spec.populations or not any(p.name == PROJ for p in spec.projections):
        raise NetworkSpecError(f"pruning needs a population '{POP}' with a recurrent projection '{PROJ}' "
                               f"(as built by neurocode.lyapunov.hrsnn); have populations "
                               f"{sorted(spec.populations)} and projections {[p.name for p in spec.projections]}")
    return spec.populations[POP], spec.projection(PROJ)


def dense_weights(spec):
    """Recurrent weights as a dense (n, n) array (SI)."""
    pop, proj = _parts(spec)
    return proj.dense((pop.size, pop.size))


def subnetwork(spec, neurons, i, j, w, params=None, method=""):
    """A new spec with the given neurons (old indices) and synapses (old indices)."""
    pop, _ = _parts(spec)
    neurons = np.sort(np.asarray(neurons, dtype=np.int64))
    new_index = -np.ones(pop.size, dtype=np.int64)
    new_index[neurons] = np.arange(neurons.size)
    keep = (new_index[i] >= 0) & (new_index[j] >= 0)
    out = NetworkSpec(dt=spec.dt, seed=spec.seed, metadata={**copy.deepcopy(spec.metadata),
                                                           "pruned_by": method, "kept_neurons": neurons.tolist()})
    out.metadata.pop("cluster", None)
    p = {k: v[neurons] for k, v in pop.params.items()}
    if params:
        p.update(params)
    out.populations[POP] = Population(POP, pop.card, neurons.size, p)
    out.add_projection(Projection(POP, POP, new_index[i[keep]], new_index[j[keep]], w[keep], name=PROJ))
    return out


def _check_counts(spec, keep_neurons, keep_synapses):
    pop, proj = _parts(spec)
    if not 1 <= keep_neurons <= pop.size:
        raise ValueError(f"keep_neurons must lie in [1, {pop.size}], got {keep_neurons}")
    if not 0 <= keep_synapses <= proj.i.size:
        raise ValueError(f"keep_synapses must lie in [0, {proj.i.size}], got {keep_synapses}")


RESCALE_RULES = ("radius", "none")
EI_RULES = ("mixed", "separate")


def _check_ei(ei):
    if ei not in EI_RULES:
        raise ValueError(f"unknown E/I rule {ei!r}; choose one of {list(EI_RULES)}")


def excitatory_neurons(spec):
    """Boolean (n,): True for excitatory neurons, from the sign of their outgoing recurrent
    weights (Dale's law); a neuron without outgoing synapses counts as excitatory.

    Raises ``NetworkSpecError`` when a neuron has outgoing weights of both signs.
    """
    pop, proj = _parts(spec)
    pos = np.bincount(proj.i, proj.weights > 0, minlength=pop.size)
    neg = np.bincount(proj.i, proj.weights < 0, minlength=pop.size)
    mixed = np.nonzero((pos > 0) & (neg > 0))[0]
    if mixed.size:
        raise NetworkSpecError(f"ei='separate' needs Dale's law (one sign per source neuron); neuron(s) "
                               f"{mixed[:5].tolist()} have outgoing weights of both signs")
    return neg == 0


def split_count(total, shares, available):
    """Split ``total`` over classes in proportion to ``shares`` (rounded), capped by
    ``available`` per class; what a class cannot take goes to the others. Returns int array."""
    shares = np.asarray(shares, dtype=np.float64)
    available = np.asarray(available, dtype=np.int64)
    if total > available.sum():
        raise ValueError(f"cannot keep {total} of {int(available.sum())}")
    want = np.floor(total * shares / shares.sum()).astype(np.int64)
    rest = np.argsort(-(total * shares / shares.sum() - want), kind="stable")
    want[rest[: total - want.sum()]] += 1
    want = np.minimum(want, available)
    while want.sum() < total:
        room = available - want
        want[np.argmax(room)] += min(room.max(), total - want.sum())
    return want


def _top_by_class(order, classes, counts):
    """The first ``counts[c]`` items of ``order`` (a ranking) within each class ``c`` of ``classes``."""
    return np.concatenate([order[classes[order] == c][: counts[c]] for c in range(len(counts))])


def _neurons_by_class(spec, order, keep):
    """The first ``keep`` neurons of the ranking ``order``, each class (E, I) at its dense share."""
    cls = (~excitatory_neurons(spec)).astype(np.int64)
    counts = np.bincount(cls, minlength=2)
    return _top_by_class(order, cls, split_count(keep, counts, counts))


def _synapses_by_class(proj, ranked, keep):
    """The first ``keep`` synapses (indices) of the ranking ``ranked``, each sign at its dense share."""
    cls = (proj.weights < 0).astype(np.int64)
    counts = split_count(min(keep, ranked.size), np.bincount(cls, minlength=2), np.bincount(cls[ranked], minlength=2))
    return _top_by_class(ranked, cls, counts)


def spectral_radius(spec):
    """Largest eigenvalue modulus of the recurrent weight matrix (SI units of the weights)."""
    return float(np.abs(np.linalg.eigvals(dense_weights(spec))).max()) if spec.projection(PROJ).i.size else 0.0


def rescale_weights(out, dense, rule="radius"):
    """Apply a weight rescaling rule to the pruned spec ``out`` of ``dense`` (in place); returns the gain.

    ``"radius"``: one gain so that ``spectral_radius(out) == spectral_radius(dense)`` (gain 1
    when the pruned matrix is nilpotent, radius 0); ``"none"``: gain 1.
    """
    if rule not in RESCALE_RULES:
        raise ValueError(f"unknown rescale rule {rule!r}; choose one of {list(RESCALE_RULES)}")
    radius = spectral_radius(out) if rule == "radius" else 0.0
    gain = spectral_radius(dense) / radius if radius > 1e-12 * np.abs(dense.projection(PROJ).weights).max() else 1.0
    out.projection(PROJ).weights[:] *= gain
    out.metadata["weight_gain"] = float(gain)
    return float(gain)


def random_prune(spec, keep_neurons, keep_synapses, seed=0, rescale="radius", ei="mixed"):
    """Uniformly random neurons, then uniformly random synapses among them; ``rescale``: a
    rule of :func:`rescale_weights`; ``ei``: ``"mixed"`` or ``"separate"`` (each class
    drawn on its own at its dense share, see the module docstring)."""
    _check_counts(spec, keep_neurons, keep_synapses)
    _check_ei(ei)
    pop, proj = _parts(spec)
    rng = np.random.default_rng(seed)
    if ei == "mixed":
        neurons = rng.choice(pop.size, keep_neurons, replace=False)
    else:
        neurons = _neurons_by_class(spec, rng.permutation(pop.size), keep_neurons)
    inside = np.isin(proj.i, neurons) & np.isin(proj.j, neurons)
    idx = np.nonzero(inside)[0]
    n = min(keep_synapses, idx.size)
    if ei == "mixed":
        idx = rng.choice(idx, n, replace=False)
    else:
        idx = _synapses_by_class(proj, rng.permutation(idx), n)
    out = subnetwork(spec, neurons, proj.i[idx], proj.j[idx], proj.weights[idx], method="random")
    rescale_weights(out, spec, rescale)
    return out


def activity_prune(spec, keep_neurons, keep_synapses, rates, rescale="radius", ei="mixed"):
    """Most active neurons, then synapses of largest ``|w| * rate(pre)`` among them.

    ``rates`` (Hz, shape (n,)) come from the dense network run on the task input;
    ``rescale``: a rule of :func:`rescale_weights`; ``ei``: ``"mixed"`` or ``"separate"``
    (each class ranked on its own and kept at its dense share, see the module docstring).
    """
    _check_counts(spec, keep_neurons, keep_synapses)
    _check_ei(ei)
    pop, proj = _parts(spec)
    rates = np.asarray(rates, dtype=np.float64)
    if rates.shape != (pop.size,):
        raise ValueError(f"rates must have shape ({pop.size},), got {rates.shape}")
    order = np.argsort(-rates, kind="stable")
    if ei == "mixed":
        neurons = order[:keep_neurons]
    else:
        neurons = _neurons_by_class(spec, order, keep_neurons)
    inside = np.nonzero(np.isin(proj.i, neurons) & np.isin(proj.j, neurons))[0]
    score = np.abs(proj.weights[inside]) * rates[proj.i[inside]]
    ranked = inside[np.argsort(-score, kind="stable")]
    if ei == "mixed":
        idx = ranked[:keep_synapses]
    else:
        idx = _synapses_by_class(proj, ranked, keep_synapses)
    out = subnetwork(spec, neurons, proj.i[idx], proj.j[idx], proj.weights[idx], method="activity")
    rescale_weights(out, spec, rescale)
    return out


# -- LNP ---------------------------------------------------------------------------------------
def neuron_exponents(spec, t_window=0.05, n_windows=2, drive_rate=2000.0, drive_weight=None,
                     treatment="exact", seed=0):
    """Finite-time per-neuron Lyapunov exponents (1/s) under frozen Poisson noise.

    Neuron ``i``'s tangent vector starts on its reset variable (the membrane); each of the
    ``n`` tangent vectors is renormalised separately every step (no orthogonalisation), and
    the log growth over ``t_window`` is averaged over ``n_windows`` consecutive windows.
    """
    from neurocode.lyapunov.spiking import SpikingMap
    pop, _ = _parts(spec)
    W = dense_weights(spec)
    w_in = drive_weight if drive_weight is not None else 2 * np.abs(W[W > 0]).mean()
    net = SpikingMap(pop.card, pop.params, dt=spec.dt, weights=W,
                     drive={"rate": drive_rate, "weight": w_in, "seed": seed})
    x = net.initial(1, seed)
    x, _ = net.run(x, int(round(0.05 / spec.dt)))           # relax onto the driven attractor
    propagate = net.propagator(treatment)
    var = net.names.index(net.dyn.reset_targets[0])
    steps = int(round(t_window / spec.dt))
    acc = np.zeros(net.n)
    n0 = int(round(0.05 / spec.dt))
    with torch.no_grad():
        for _ in range(n_windows):
            V = torch.zeros(1, net.n_state, net.n, dtype=net.dtype)
            V[0, var * net.n + torch.arange(net.n), torch.arange(net.n)] = 1.0
            logs = torch.zeros(net.n, dtype=torch.float64)
            for s in range(steps):
                x, V = propagate(x, V, n0 + s)
                norm = V.norm(dim=1).clamp_min(1e-300)
                logs += torch.log(norm[0])
                V = V / norm[:, None, :]
            n0 += steps
            acc += logs.numpy() / (steps * spec.dt)
    return acc / n_windows


def lyapunov_matrix(spec, exponents):
    """``L_ij`` (1/s) per synapse of the recurrent projection: harmonic means of ``|lambda|``."""
    pop, proj = _parts(spec)
    lam = np.abs(np.asarray(exponents, dtype=np.float64)) + 1e-9
    inv = 1.0 / lam
    # H_i: harmonic mean over i and its in/out neighbours
    total = inv.copy()
    count = np.ones(pop.size)
    for a, b in ((proj.i, proj.j), (proj.j, proj.i)):
        np.add.at(total, a, inv[b])
        np.add.at(count, a, 1.0)
    H = count / total
    return 2 * H[proj.i] * H[proj.j] / (H[proj.i] + H[proj.j])


def effective_resistance(n, i, j, w):
    """Effective resistance of each edge of the undirected graph with conductances ``|w|``."""
    A = np.zeros((n, n))
    np.add.at(A, (i, j), np.abs(w))
    A = A + A.T
    L = np.diag(A.sum(1)) - A
    Lp = np.linalg.pinv(L)
    d = np.diag(Lp)
    return d[i] + d[j] - 2 * Lp[i, j]


def keep_probabilities(score, expected):
    """``p = min(1, rho * score)`` with ``rho`` found by bisection so that ``sum(p) == expected``."""
    if expected <= 0:
        return np.zeros_like(score)
    lo, hi = 0.0, 1.0
    while np.minimum(1, hi * score).sum() < expected:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(1, mid * score).sum() < expected else (lo, mid)
    return np.minimum(1.0, hi * score)


def noise_prune_synapses(spec, L, keep_synapses, seed=0, rescale=False, ei="mixed"):
    """Step 2: spectral sparsification with keep-probabilities; returns (i, j, w) kept.

    With ``rescale`` kept weights are divided by their keep probability (the sparse graph
    equals the dense one in expectation); by default they keep their values (a global gain
    is applied later by :func:`lnp_prune`; see "Weight rescaling" in the module docstring).
    ``ei="separate"``: excitatory (``w > 0``) and inhibitory synapses get their own ``rho``,
    each class keeping ``keep_synapses`` times its dense share in expectation.
    """
    _check_ei(ei)
    pop, proj = _parts(spec)
    R = effective_resistance(pop.size, proj.i, proj.j, proj.weights)
    score = np.abs(proj.weights) * np.maximum(R, 0) / L
    if ei == "mixed":
        p = keep_probabilities(score, keep_synapses)
    else:
        p = np.zeros_like(score)
        share = keep_synapses / max(proj.i.size, 1)
        for cls in (proj.weights > 0, proj.weights < 0):
            p[cls] = keep_probabilities(score[cls], share * cls.sum())
    rng = np.random.default_rng(seed)
    kept = rng.random(p.size) < p
    return proj.i[kept], proj.j[kept], proj.weights[kept] / (p[kept] if rescale else 1.0)


def betweenness_order(n, i, j, w, seed=0, samples=None):
    """Neurons sorted by increasing betweenness centrality (distance ``1/|w|``)."""
    import networkx as nx
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_weighted_edges_from(zip(i.tolist(), j.tolist(), (1.0 / np.abs(w)).tolist()), weight="d")
    bc = nx.betweenness_centrality(G, k=min(n, samples) if samples else None, weight="d", seed=seed)
    values = np.array([bc[k] for k in range(n)])
    return np.argsort(values, kind="stable"), values


def ipr(v):
    """Inverse participation ratio of a vector (1/n delocalised ... 1 localised)."""
    p = np.abs(v) ** 2
    return float((p ** 2).sum() / p.sum() ** 2)


def leading_eigenvector(n, i, j, w):
    A = np.zeros((n, n))
    np.add.at(A, (j, i), w)
    vals, vecs = np.linalg.eig(A)
    return vecs[:, np.argmax(vals.real)]


def delocalise(n, i, j, w, add_fraction=0.01, candidates=20, seed=0):
    """Step 4: greedily add edges that lower the leading eigenvector's IPR."""
    rng = np.random.default_rng(seed)
    n_add = max(1, int(round(add_fraction * i.size)))
    w_typ = np.median(np.abs(w)) if w.size else 0.0
    v = leading_eigenvector(n, i, j, w)
    best = ipr(v)
    added = 0
    for _ in range(candidates):
        if added >= n_add:
            break
        order = np.argsort(-np.abs(v))
        src = rng.choice(order[: max(1, n // 10)])
        dst = rng.choice(order[-max(1, n // 10):])
        if src == dst:
            continue
        sign = np.sign(w[i == src].mean()) if np.any(i == src) else 1.0
        ti, tj, tw = np.append(i, src), np.append(j, dst), np.append(w, sign * w_typ)
        tv = leading_eigenvector(n, ti, tj, tw)
        if ipr(tv) < best:
            i, j, w, v, best, added = ti, tj, tw, tv, ipr(tv), added + 1
    log.info("delocalisation: added %d edge(s), IPR of the leading eigenvector %.4g", added, best)
    return i, j, w


def optimise_timescales(spec, candidates=4, t_sim=0.1, seed=0, drive_rate=2000.0, drive_weight=None,
                        treatment="exact", keep_mean=False):
    """Step 5: random search over the gamma law of ``tau_m``; the largest exponent closest
    to 0 wins. Returns ``(tau_m values, table of candidates)``.

    Candidates: the current law, then means uniform in 10-40 ms and cvs in 0.2-1.0; with
    ``keep_mean`` only the cv is searched (the mean stays the current one: with the
    surrogate treatment the largest exponent is roughly ``-1/tau``, so a free mean makes
    "closest to 0" mean "slowest").

    The frozen Poisson drive is ``drive_rate`` (Hz) through ``drive_weight`` (SI; default
    twice the mean excitatory weight); ``treatment`` is the spike treatment of the spectra
    (:mod:`neurocode.lyapunov.spiking`).
    """
    from neurocode.lyapunov.spiking import SpikingMap, spiking_spectrum
    pop, _ = _parts(spec)
    W = dense_weights(spec)
    rng = np.random.default_rng(seed)
    base = pop.params["tau_m"]
    trials = [(float(base.mean()), float(base.std() / base.mean()))]
    means = rng.uniform(10e-3, 40e-3, candidates - 1)
    trials += [(trials[0][0] if keep_mean else float(m), float(rng.uniform(0.2, 1.0))) for m in means]
    table, best = [], None
    u = rng.random(pop.size)
    w_in = drive_weight if drive_weight is not None else 2 * np.abs(W[W > 0]).mean() if np.any(W > 0) else 1e-10
    from scipy import stats
    for mean, cv in trials:
        shape = 1 / cv ** 2
        tau = stats.gamma(a=shape, scale=mean / shape).ppf(np.clip(u, 1e-6, 1 - 1e-6))
        params = dict(pop.params, tau_m=tau)
        net = SpikingMap(pop.card, params, dt=spec.dt, weights=W,
                         drive={"rate": drive_rate, "weight": w_in, "seed": seed})
        lam = float(spiking_spectrum(net, batch=1, k=1, t_sim=t_sim, t_transient=0.02, seed=seed,
                                     treatment=treatment).exponents[0])
        table.append({"tau_mean_s": mean, "tau_cv": cv, "lambda_max_per_s": lam})
        if best is None or abs(lam) < abs(best[0]):
            best = (lam, tau)
    return best[1], table


def lnp_prune(spec, keep_synapses, keep_neurons, exponents=None, add_fraction=0.01, optimise=True,
              seed=0, treatment="exact", rescale="radius", nodes="betweenness", ei="mixed", **exponent_kw):
    """The five LNP steps; returns ``(pruned spec, info dict)``.

    ``keep_synapses`` is the number kept by noise pruning (before node pruning removes the
    synapses of dropped neurons and delocalisation adds a few); the baselines should be
    matched to the final counts of the returned spec. ``treatment`` is the spike treatment
    of steps 1 and 5 (``"exact"``; ``"surrogate"`` is the cheap approximation the LNP study
    uses at a 1 ms step, where the exact treatment's first-order error is large).
    ``rescale``: ``"radius"`` (default), ``"none"`` or ``"inverse-p"`` (see "Weight
    rescaling" above). ``nodes="random"`` replaces step 3's
    betweenness ranking by uniformly random neurons (an ablation). ``ei``: ``"mixed"`` (default) or
    ``"separate"``: steps 2 and 3 keep excitatory and inhibitory synapses and neurons at
    their dense shares (module docstring).
    """
    _check_counts(spec, keep_neurons, keep_synapses)
    _check_ei(ei)
    if rescale not in (*RESCALE_RULES, "inverse-p"):
        raise ValueError(f"unknown rescale rule {rescale!r}; choose one of {[*RESCALE_RULES, 'inverse-p']}")
    pop, proj = _parts(spec)
    if exponents is None:
        exponents = neuron_exponents(spec, seed=seed, treatment=treatment, **exponent_kw)
    L = lyapunov_matrix(spec, exponents)
    i, j, w = noise_prune_synapses(spec, L, keep_synapses, seed=seed, rescale=rescale == "inverse-p", ei=ei)
    if nodes not in ("betweenness", "random"):
        raise ValueError(f"unknown node rule {nodes!r}; choose 'betweenness' or 'random'")
    if nodes == "betweenness":
        order, _ = betweenness_order(pop.size, i, j, w, seed=seed, samples=100)
    else:
        order = np.random.default_rng(seed).permutation(pop.size)
    if ei == "mixed":
        neurons = np.sort(order[pop.size - keep_neurons:])
    else:
        neurons = np.sort(_neurons_by_class(spec, order[::-1], keep_neurons))
    tmp = subnetwork(spec, neurons, i, j, w, method="lnp")
    sub = tmp.projection(PROJ)
    i2, j2, w2 = delocalise(keep_neurons, sub.i, sub.j, sub.weights, add_fraction, seed=seed)
    out = subnetwork(tmp, np.arange(keep_neurons), i2, j2, w2, method="lnp")
    out.metadata["kept_neurons"] = neurons.tolist()
    rescale_weights(out, spec, "none" if rescale == "inverse-p" else rescale)
    info = {"exponents": np.asarray(exponents).tolist(), "timescale_search": []}
    if optimise:
        drive = {k: v for k, v in exponent_kw.items() if k in ("drive_rate", "drive_weight")}
        tau, table = optimise_timescales(out, seed=seed, treatment=treatment, **drive)
        out.populations[POP].params["tau_m"] = tau
        info["timescale_search"] = table
    return out, info
