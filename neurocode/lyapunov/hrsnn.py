"""HRSNN and CHRSNN: heterogeneous recurrent spiking networks built from model cards.

* **HRSNN** (Chakraborty & Mukhopadhyay 2023): one recurrent population of a card whose
  membrane time constants are drawn per neuron from a gamma distribution (the ``lif``
  card's ``tau_m`` already is), 80 % excitatory / 20 % inhibitory neurons (Dale's law:
  the sign of a weight is the sign of its source), random (Erdos-Renyi) connectivity.
* **CHRSNN**: ``n_clusters`` HRSNN clusters, each with its own gamma distribution of
  ``tau_m`` (means spread over ``tau_means``) and its own 80/20 excitatory/inhibitory
  split (the first ``frac_exc`` of each cluster), dense-ish inside a cluster and linked
  between clusters along a Watts-Strogatz small-world graph of the clusters.

Both return a :class:`~neurocode.spec.NetworkSpec` with one population ``"hrsnn"``
and one recurrent projection ``"recurrent"`` (zero delays).

>>> spec = hrsnn(n=50, p=0.1, seed=1)
>>> spec.populations["hrsnn"].size, spec.projections[0].name
(50, 'recurrent')
>>> spec = chrsnn(n_clusters=3, cluster_size=20, seed=1)
>>> spec.populations["hrsnn"].size, spec.metadata["kind"]
(60, 'chrsnn')
"""

from __future__ import annotations

import numpy as np

from neurocode.cards.heterogeneity import Distribution
from neurocode.spec import NetworkSpec, Projection


def _excitatory(n, frac_exc):
    """Boolean mask: the first ``round(frac_exc * n)`` of ``n`` neurons are excitatory."""
    return np.arange(n) < int(round(frac_exc * n))


def _signed_weights(rng, i, exc, w_exc, g_inh):
    return np.where(exc[i], w_exc, -g_inh * w_exc) * rng.uniform(0.5, 1.5, size=i.size)


def hrsnn(n=400, card="lif", p=0.1, w_exc=0.15e-9, g_inh=4.0, frac_exc=0.8, tau_mean=20e-3,
          tau_cv=0.5, dt=1e-4, seed=0):
    """A heterogeneous recurrent SNN (one population, gamma-distributed ``tau_m``).

    Parameters
    ----------
    n : int
        Number of neurons.
    card : str
        Spiking card with a ``tau_m`` parameter (default ``lif``).
    p : float
        Connection probability.
    w_exc : float
        Mean excitatory weight (SI units of the card's weight; amperes for ``lif``).
    g_inh : float
        Inhibitory weight magnitude relative to ``w_exc``.
    frac_exc : float
        Fraction of excitatory neurons (the first ``frac_exc * n`` indices).
    tau_mean, tau_cv : float
        Mean (s) and coefficient of variation of the gamma distribution of ``tau_m``.
    dt : float
        Time step (s).
    seed : int
    """
    if not 0 < p <= 1:
        raise ValueError(f"connection probability p must lie in (0, 1], got {p}")
    spec = NetworkSpec(dt=dt, seed=seed, metadata={"kind": "hrsnn", "frac_exc": frac_exc})
    tau = Distribution("gamma", {"mean": float(tau_mean), "cv": float(tau_cv)}, None)
    spec.add_population("hrsnn", card, n, tau_m=tau.sample(n, spec.rng))
    rng = np.random.default_rng(seed + 1)
    mask = rng.random((n, n)) < p
    np.fill_diagonal(mask, False)
    i, j = np.nonzero(mask)
    spec.add_projection(Projection("hrsnn", "hrsnn", i, j, _signed_weights(rng, i, _excitatory(n, frac_exc), w_exc,
                                                                            g_inh), name="recurrent"))
    return spec


def chrsnn(n_clusters=4, cluster_size=100, card="lif", p_in=0.15, p_out=0.02, k_ring=2, rewire=0.2,
           w_exc=0.15e-9, g_inh=4.0, frac_exc=0.8, tau_means=(10e-3, 40e-3), tau_cv=0.5, dt=1e-4, seed=0):
    """Clustered HRSNN: clusters with their own ``tau_m`` gamma laws, small-world links.

    Parameters
    ----------
    n_clusters, cluster_size : int
    p_in, p_out : float
        Connection probabilities within a cluster and between linked clusters.
    k_ring, rewire : int, float
        Watts-Strogatz parameters of the cluster graph (``networkx``).
    tau_means : (float, float)
        Range (s) of the clusters' mean ``tau_m`` (log-spaced).
    Other parameters as for :func:`hrsnn`.
    """
    import networkx as nx
    n = n_clusters * cluster_size
    spec = NetworkSpec(dt=dt, seed=seed, metadata={"kind": "chrsnn", "n_clusters": n_clusters,
                                                   "frac_exc": frac_exc})
    means = np.geomspace(tau_means[0], tau_means[1], n_clusters)
    tau = np.concatenate([Distribution("gamma", {"mean": float(m), "cv": float(tau_cv)}, None)
                          .sample(cluster_size, spec.rng) for m in means])
    spec.add_population("hrsnn", card, n, tau_m=tau)
    rng = np.random.default_rng(seed + 1)
    cluster = np.repeat(np.arange(n_clusters), cluster_size)
    graph = nx.connected_watts_strogatz_graph(n_clusters, min(k_ring, n_clusters - 1), rewire,
                                              seed=seed) if n_clusters > 2 else nx.complete_graph(n_clusters)
    linked = np.eye(n_clusters, dtype=bool)
    for a, b in graph.edges:
        linked[a, b] = linked[b, a] = True
    prob = np.where(cluster[:, None] == cluster[None, :], p_in, np.where(linked[cluster][:, cluster], p_out, 0.0))
    mask = rng.random((n, n)) < prob
    np.fill_diagonal(mask, False)
    i, j = np.nonzero(mask)
    spec.metadata["cluster"] = cluster.tolist()
    exc = np.tile(_excitatory(cluster_size, frac_exc), n_clusters)
    spec.add_projection(Projection("hrsnn", "hrsnn", i, j, _signed_weights(rng, i, exc, w_exc, g_inh),
                                   name="recurrent"))
    return spec
