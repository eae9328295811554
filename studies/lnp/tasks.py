"""Tasks of the LNP study: a pruned HRSNN as a fixed reservoir, only a ridge readout trained.

* **Lorenz-63 prediction**: the network is driven by the standardised ``x(t)`` of a Lorenz
  trajectory (sampled every 0.02 time units, each sample held for ``steps_per_sample``
  network steps); features are exponentially filtered spike trains read at the end of each
  sample; a ridge readout predicts ``x(t + horizon)``; NRMSE (RMSE / std of the target) on
  the last 30 % of the series (held out, in time order).
* **Spoken keywords** (``neurocode.data.keywords``, espeak-ng synthesis, speaker split):
  standardised log-mel frames (40 bands, 20 ms hop) drive the network through random input
  weights, each frame held for ``steps_per_frame`` steps; features are spike counts per
  neuron in 4 equal time bins; a ridge classifier (one-vs-all) gives test accuracy.

Input enters as an increment of the card's synaptic current per step,
``I_syn += in_bias + in_gain * (W_in u)``, the same ``W_in`` row for a neuron in every
pruned version of a network (``metadata["kept_neurons"]``).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)


def lorenz_series(n_samples, sample_dt=0.02, h=0.01, t_skip=20.0, seed=0):
    """``x`` of Lorenz-63 (sigma 10, rho 28, beta 8/3) by RK4 with step ``h``, every ``sample_dt``."""
    def f(u):
        x, y, z = u
        return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])
    rng = np.random.default_rng(seed)
    u = np.array([1.0, 1.0, 20.0]) + rng.normal(size=3)
    every = int(round(sample_dt / h))
    n_skip = int(round(t_skip / h))
    out = np.empty(n_samples)
    for k in range(n_skip + n_samples * every):
        k1 = f(u)
        k2 = f(u + h / 2 * k1)
        k3 = f(u + h / 2 * k2)
        k4 = f(u + h * k3)
        u = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if k >= n_skip and (k - n_skip) % every == every - 1:
            out[(k - n_skip) // every] = u[0]
    return out


def input_weights(n, d, seed):
    """Fixed random input weights (n, d), N(0, 1/d), of the *dense* network's neurons."""
    return np.random.default_rng([seed, 7]).normal(0.0, 1.0 / np.sqrt(d), size=(n, d))


def reservoir_spec(spec, w_in, cfg):
    """``spec`` with an analog input ``"u"`` (d channels and a constant bias channel) wired to
    every neuron, so the runner adds ``in_bias + in_gain * (W_in u)`` to ``I_syn`` per step."""
    import copy

    from neurocode.spec import Projection
    kept = np.asarray(spec.metadata.get("kept_neurons", np.arange(spec.populations["hrsnn"].size)))
    w = np.asarray(w_in, dtype=np.float64)[kept]                      # (n, d)
    out = copy.copy(spec)
    out.inputs, out.projections = dict(spec.inputs), list(spec.projections)
    n, d = w.shape
    out.add_input("u", d + 1)
    dense = np.vstack([cfg["in_gain"] * w.T, np.full((1, n), cfg["in_bias"])])   # (d + 1, n)
    out.add_projection(Projection.from_dense("u", "hrsnn", dense, name="input"))
    return out


def run_reservoir(spec, frames, w_in, hold, cfg, seed=0, filter_tau=None):
    """Drive the network with ``frames`` (T, batch, d), each held ``hold`` steps.

    The network runs on :class:`~neurocode.torch.runner.NetworkRunner` (the same engine as
    every torch simulation), started from :func:`~neurocode.lyapunov.spiking.spread_initial`,
    with ``propagation="auto"``: event-driven in the chunks where few neurons spike (the same
    spike trains as the matrix product; 4.8x faster for a 1,000-neuron HRSNN at ~30 Hz).
    Returns ``(counts, filtered)``: spike counts per frame (T, batch, n) and, when
    ``filter_tau`` (s) is given, the exponentially filtered spike trains read at the end of
    each frame (T, batch, n); otherwise None.
    """
    from neurocode.lyapunov.spiking import spread_initial
    from neurocode.torch import NetworkRunner
    runner = NetworkRunner(reservoir_spec(spec, w_in, cfg), dtype=torch.float64, propagation="auto")
    runner.requires_grad_(False)
    T, batch, _ = frames.shape
    u = torch.as_tensor(frames, dtype=torch.float64)
    u = torch.cat([u, torch.ones(T, batch, 1, dtype=torch.float64)], dim=2)     # bias channel
    n_neurons = spec.populations["hrsnn"].size
    state = runner.initial_state(batch)
    state["hrsnn"] = spread_initial(runner.populations["hrsnn"], state["hrsnn"], seed)
    pending = runner.initial_pending(batch)
    counts = torch.zeros(T, batch, n_neurons, dtype=torch.float64)
    filt = torch.zeros(T, batch, n_neurons, dtype=torch.float64) if filter_tau else None
    r = torch.zeros(batch, n_neurons, dtype=torch.float64)
    decay = np.exp(-spec.dt / filter_tau) if filter_tau else 0.0
    n = 0
    with torch.no_grad():
        ctx = runner.prepare(state, grad=False)
        for f in range(T):
            for _ in range(hold):
                state, pending, spikes, _, _ = runner.step(state, pending, n * spec.dt, {"u": u[f]}, ctx)
                s = spikes["hrsnn"]
                counts[f] += s
                if filt is not None:
                    r = r * decay + s
                n += 1
            if filt is not None:
                filt[f] = r
    return counts.numpy(), (filt.numpy() if filt is not None else None)


def standardise(feats, n_train):
    """Z-score with training statistics, robustly: features constant on the training part are
    dropped, the standard deviation is floored at a tenth of the median one and the scores
    are clipped to +-5 (a neuron almost silent in training but active in testing would
    otherwise get a huge weight: one such network gave NRMSE 433)."""
    mu, sd = feats[:n_train].mean(0), feats[:n_train].std(0)
    keep = sd > 1e-6 * max(float(sd.max()), 1e-300)
    sd = np.maximum(sd[keep], 0.1 * np.median(sd[keep]))
    return np.clip((feats[:, keep] - mu[keep]) / sd, -5.0, 5.0)


def lorenz_task(spec, cfg, seed):
    """NRMSE of ``x(t + horizon)`` predicted by a ridge readout of filtered spike trains."""
    from sklearn.linear_model import Ridge
    S, B, wash, h = cfg["lorenz_samples"], cfg["segments"], cfg["washout"], cfg["horizon"]
    series = lorenz_series(S + wash + h, cfg["lorenz_dt"], seed=1000 + seed)
    series = (series - series.mean()) / series.std()
    L = S // B
    frames = np.stack([series[b * L: b * L + wash + L] for b in range(B)], axis=1)[..., None]   # (wash+L, B, 1)
    w_in = input_weights(cfg["n_dense"], 1, seed)
    _, filt = run_reservoir(spec, frames, w_in, cfg["steps_per_sample"], cfg, seed, cfg["filter_tau"])
    feats = np.concatenate([filt[wash:, b] for b in range(B)])                              # (B*L, n), time order
    target = np.concatenate([series[b * L + wash + h: b * L + wash + h + L] for b in range(B)])
    split = int(0.7 * feats.shape[0])
    X = standardise(feats, split)
    # alpha from a time-ordered validation block (the last quarter of the training part):
    # leave-one-out on autocorrelated samples picks far too small an alpha
    fit = int(0.75 * split)
    def err(alpha, a, b, c, d):
        pred = Ridge(alpha=alpha).fit(X[a:b], target[a:b]).predict(X[c:d])
        return float(np.sqrt(np.mean((pred - target[c:d]) ** 2)) / target[c:d].std())
    alphas = np.logspace(-2, 5, 15)
    alpha = float(alphas[np.argmin([err(a, 0, fit, fit, split) for a in alphas])])
    nrmse = err(alpha, 0, split, split, len(target))
    rate = float(filt.mean() / cfg["filter_tau"])
    return {"lorenz_nrmse": nrmse, "lorenz_alpha": alpha, "lorenz_rate_hz": rate}


def keyword_task(spec, data, cfg, seed):
    """Test accuracy of a ridge classifier on binned spike counts; also per-neuron rates (Hz)."""
    from sklearn.linear_model import RidgeClassifierCV
    x_tr, y_tr, x_te, y_te = data
    frames = np.concatenate([x_tr, x_te]).transpose(1, 0, 2)                  # (T, batch, d)
    w_in = input_weights(cfg["n_dense"], frames.shape[2], seed)
    counts, _ = run_reservoir(spec, frames, w_in, cfg["steps_per_frame"], cfg, seed)
    T = counts.shape[0]
    bins = np.array_split(np.arange(T), 4)
    feats = np.concatenate([counts[b].sum(0) for b in bins], axis=1)          # (batch, 4n)
    feats = np.log1p(feats)
    n_tr = x_tr.shape[0]
    X = standardise(feats, n_tr)
    model = RidgeClassifierCV(alphas=np.logspace(-2, 4, 13)).fit(X[:n_tr], y_tr)
    acc = float((model.predict(X[n_tr:]) == y_te).mean())
    duration = T * cfg["steps_per_frame"] * spec.dt
    rates = counts[:, :n_tr].sum(0).mean(0) / duration
    return {"keyword_accuracy": acc, "keyword_alpha": float(model.alpha_),
            "keyword_rate_hz": float(rates.mean())}, rates


def keyword_data(cfg, cache):
    """A fixed random subset of the synthesised keywords (speaker split), standardised;
    features cached in ``cache`` (.npz)."""
    from pathlib import Path

    from neurocode.io import atomic_path
    cache = Path(cache)
    if cache.exists():
        z = np.load(cache)
        return z["x_tr"], z["y_tr"], z["x_te"], z["y_te"]
    from neurocode.data.keywords import load_keywords
    tr, te = load_keywords("train", seed=0), load_keywords("test", seed=0)
    rng = np.random.default_rng(0)
    a = rng.choice(len(tr.y), min(cfg["kw_train"], len(tr.y)), replace=False)
    b = rng.choice(len(te.y), min(cfg["kw_test"], len(te.y)), replace=False)
    x_tr, x_te = tr.x[a], te.x[b]
    mu, sd = x_tr.mean((0, 1)), x_tr.std((0, 1)) + 1e-6
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x_tr=x_tr, y_tr=tr.y[a], x_te=x_te, y_te=te.y[b])
    return x_tr, tr.y[a], x_te, te.y[b]
