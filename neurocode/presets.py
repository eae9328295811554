"""Ready-made NetworkSpecs: the COBA benchmark network and small default networks.

All functions return a :class:`~neurocode.spec.NetworkSpec` (SI values) that any
engine can run; nothing here depends on a simulation duration unless it says so.

>>> spec = coba_network(n_neurons=400, seed=1)
>>> spec.populations["coba"].size, spec.metadata["n_exc"]
(400, 320)
>>> proj = spec.projection("recurrent")
>>> bool((proj.weights[proj.i < 320] > 0).all() and (proj.weights[proj.i >= 320] < 0).all())
True
>>> t = poisson_spike_trains(50, rate=20.0, duration=1.0, dt=1e-4, seed=0)[1]
>>> bool(0.9 < t.size / 50 / 20.0 < 1.1)                # about 20 spikes per source
True
"""

from __future__ import annotations

import numpy as np

from neurocode.checks import check_memory
from neurocode.errors import NetworkSpecError
from neurocode.cards import load_card
from neurocode.spec import NetworkSpec, Projection

#: Brette et al. (2007), benchmark 1 (after Vogels & Abbott 2005), in SI units:
#: excitatory and inhibitory conductance increments (6 nS and 67 nS, i.e. 0.6 and 6.7
#: times the 10 nS leak conductance of the ``coba_lif`` card).
COBA_W_EXC = 6e-9
COBA_W_INH = 67e-9


def poisson_spike_trains(n_sources, rate, duration, dt=1e-4, start=0.0, seed=None):
    """Independent Bernoulli-per-step (discretised Poisson) spike trains.

    Inter-spike intervals are geometric in units of ``dt`` (at least one step), so no
    source fires twice in one time step, which Brian2's ``SpikeGeneratorGroup`` forbids.

    Parameters
    ----------
    n_sources : int
        Number of independent sources.
    rate : float
        Firing rate of every source (Hz).
    duration : float
        Length of the window (s); spikes lie in ``[start, start + duration)``.
    dt : float
        Time step (s); spike times are multiples of ``dt``.
    start : float
        Start of the window (s).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    indices : numpy.ndarray of int64
    times : numpy.ndarray of float64
        Spike times in seconds, sorted.
    """
    if rate < 0 or duration < 0 or dt <= 0:
        raise NetworkSpecError(f"poisson_spike_trains: need rate >= 0 Hz, duration >= 0 s and "
                               f"dt > 0 s, got rate={rate}, duration={duration}, dt={dt}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_steps = int(round(duration / dt))
    p = rate * dt
    if p > 1:
        raise NetworkSpecError(f"poisson_spike_trains: rate {rate} Hz exceeds one spike per "
                               f"time step (1/dt = {1 / dt:g} Hz)")
    if p == 0 or n_steps == 0 or n_sources == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    expected = n_steps * p
    k = int(expected + 6 * np.sqrt(expected) + 10)
    steps = np.cumsum(rng.geometric(p, size=(n_sources, k)), axis=1) - 1
    while (steps[:, -1] < n_steps).any():          # rare: extend the few short rows
        more = np.cumsum(rng.geometric(p, size=(n_sources, k)), axis=1) + steps[:, -1:]
        steps = np.concatenate([steps, more], axis=1)
    src, col = np.nonzero(steps < n_steps)
    step = steps[src, col]
    order = np.lexsort((src, step))
    return src[order].astype(np.int64), start + step[order] * dt


def coba_network(n_neurons=4000, exc_fraction=0.8, p=0.02, seed=0, dt=1e-4,
                 kick_rate=200.0, kick_duration=0.05, n_kick=100):
    """The Vogels-Abbott COBA network of Brette et al. (2007), benchmark 1.

    ``n_neurons`` ``coba_lif`` neurons (one population ``"coba"``); the first
    ``exc_fraction * n_neurons`` are excitatory. One recurrent projection
    ``"recurrent"`` with connection probability ``p`` carries signed conductance
    weights: +6 nS from excitatory, -67 nS from inhibitory neurons (the card routes
    positive weights to ``g_e``, negative ones to ``g_i``). The membrane time constant
    is C_m/g_l = 20 ms; ``tau_e`` is gamma-distributed around 5 ms (the card's
    heterogeneity). Instead of random initial conductances, a brief excitatory
    Poisson "kick" (``n_kick`` sources at ``kick_rate`` Hz during the first
    ``kick_duration`` seconds, input ``"kick"``, projection ``"kick"``) ignites the
    self-sustained activity, so every engine starts from the same spec.

    Parameters
    ----------
    n_neurons : int
    exc_fraction : float
        Fraction of excitatory neurons.
    p : float
        Connection probability (recurrent and from the kick input).
    seed : int
        Seed of connectivity, heterogeneity and kick spikes.
    dt : float
        Time step (s).

    Returns
    -------
    NetworkSpec
        ``metadata`` holds ``n_exc`` and the source of the parameters.
    """
    if not 0 < exc_fraction <= 1 or not 0 < p <= 1 or n_neurons < 2:
        raise NetworkSpecError(f"coba_network: need n_neurons >= 2 and 0 < exc_fraction, p <= 1; "
                               f"got n_neurons={n_neurons}, exc_fraction={exc_fraction}, p={p}")
    n_exc = int(round(exc_fraction * n_neurons))
    spec = NetworkSpec(dt=dt, seed=seed, metadata={
        "preset": "coba_network", "n_exc": n_exc,
        "reference": "Brette et al. (2007) J. Comput. Neurosci. 23:349, benchmark 1"})
    spec.add_population("coba", load_card("coba_lif"), n_neurons)
    rng = np.random.default_rng([seed, 1])
    mask = rng.random((n_neurons, n_neurons)) < p
    np.fill_diagonal(mask, False)
    i, j = np.nonzero(mask)
    weights = np.where(i < n_exc, COBA_W_EXC, -COBA_W_INH)
    spec.add_projection(Projection("coba", "coba", i, j, weights, name="recurrent"))
    if n_kick and kick_duration > 0:
        idx, times = poisson_spike_trains(n_kick, kick_rate, kick_duration, dt, seed=rng)
        spec.add_input("kick", n_kick, idx, times)
        kmask = rng.random((n_kick, n_neurons)) < max(p, 0.1)
        ki, kj = np.nonzero(kmask)
        spec.add_projection(Projection("kick", "coba", ki, kj, np.full(ki.size, COBA_W_EXC),
                                       name="kick"))
    return spec


#: Weights (SI, in the unit of each card's weight) for :func:`default_network`:
#: input, recurrent excitatory and recurrent inhibitory (magnitude).
DEFAULT_WEIGHTS = {
    "lif": (100e-12, 20e-12, 80e-12),          # amp
    "alif": (100e-12, 20e-12, 80e-12),         # amp
    "coba_lif": (6e-9, 1e-9, 8e-9),            # siemens
    "izhikevich": (5.0, 1.0, 4.0),             # volt/second
    "ttfs": (0.05, 0.01, 0.02),                # dimensionless
}


def default_network(card="lif", size=200, duration=1.0, seed=0, dt=1e-4, n_input=100,
                    input_rate=20.0, p_input=0.2, p_recurrent=0.1, exc_fraction=0.8):
    """A small recurrent heterogeneous network of ``card`` driven by Poisson input.

    Used by ``neurocode simulate CARD``. Neuron parameters are sampled from the card's
    heterogeneity; ``n_input`` Poisson sources (``input_rate`` Hz for ``duration``
    seconds) project with probability ``p_input``; recurrent connections (probability
    ``p_recurrent``) are excitatory from the first ``exc_fraction`` of neurons and
    inhibitory from the rest (signed weights, see :data:`DEFAULT_WEIGHTS`).

    Returns
    -------
    NetworkSpec
        Population ``"net"``, input ``"input"``, projections ``"input"`` and
        ``"recurrent"``.
    """
    card = card if not isinstance(card, str) else load_card(card)
    if card.name not in DEFAULT_WEIGHTS:
        raise NetworkSpecError(f"no default weights for card '{card.name}'; default networks exist "
                               f"for {sorted(DEFAULT_WEIGHTS)} - build a NetworkSpec and pass its .npz")
    if size < 1 or n_input < 1:
        raise NetworkSpecError(f"default_network: need size >= 1 and n_input >= 1, got {size}, {n_input}")
    check_memory(9 * size * (size + n_input), f"a default network of {size} neurons draws dense connection masks")
    w_in, w_exc, w_inh = DEFAULT_WEIGHTS[card.name]
    spec = NetworkSpec(dt=dt, seed=seed, metadata={"preset": "default_network", "card": card.name,
                                                   "input_rate_hz": input_rate})
    spec.add_population("net", card, size)
    rng = np.random.default_rng([seed, 2])
    idx, times = poisson_spike_trains(n_input, input_rate, duration, dt, seed=rng)
    spec.add_input("input", n_input, idx, times)
    mask = rng.random((n_input, size)) < p_input
    i, j = np.nonzero(mask)
    spec.add_projection(Projection("input", "net", i, j, np.full(i.size, w_in), name="input"))
    n_exc = int(round(exc_fraction * size))
    mask = rng.random((size, size)) < p_recurrent
    np.fill_diagonal(mask, False)
    i, j = np.nonzero(mask)
    spec.add_projection(Projection("net", "net", i, j, np.where(i < n_exc, w_exc, -w_inh),
                                   name="recurrent"))
    spec.metadata["n_exc"] = n_exc
    return spec
