"""Rank-coding training task: an LSTM or spiking classifier trained with rank coding (or the
non-RC baseline) on a task, writing a run folder (config, metrics, speed-accuracy sweep,
model weights; the spiking model's NetworkSpec).

>>> sorted(TASKS)
['fashion_mnist', 'keywords', 'mnist', 'noise', 'spotting']
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from neurocode.errors import ConfigError
from neurocode.io import atomic_path, write_json
from neurocode.objectives.rank_coding import evaluate, evaluate_last_step
from neurocode.objectives.spotting import SpottingScore
from neurocode.training.options import Option, check_table

log = logging.getLogger(__name__)

TASKS = ("spotting", "noise", "mnist", "fashion_mnist", "keywords")
#: Type and range of every option of :func:`train_run`.
OPTIONS = {
    "task": Option(str, choices=TASKS), "model": Option(str, choices=("lstm", "spiking")),
    "mode": Option(str, choices=("rc", "full")),
    "theta": Option(float, low=0, inclusive=False, high=1, high_inclusive=False),
    "beta": Option(float, low=0), "epochs": Option(int, low=1), "lr": Option(float, low=0, inclusive=False),
    "batch_size": Option(int, low=1), "hidden": Option(int, low=1), "seed": Option(int, low=0),
    "n_train": Option(int, low=1, nullable=True), "activation": Option(str, choices=("sigmoid", "softmax")),
    "card": Option(str), "input_dropout": Option(float, low=0, high=1, high_inclusive=False),
    "param_lr": Option(float, low=0, inclusive=False, nullable=True),
    "data": Option(str, choices=("fixed", "fresh")), "epoch_sequences": Option(int, low=1),
    "n_test": Option(int, low=1, nullable=True),
}
#: Held-out test sequences of a toy task trained on fresh data.
FRESH_TEST = 10_000


class _Tensors:
    """Dense ``(x, y)`` tensors with the ``batch(idx)`` / ``compact()`` / ``expand()`` protocol;
    with ``ideal`` (ideal decision steps), ``batch`` returns ``(x, y, ideal)``."""

    def __init__(self, x, y, ideal=None):
        self.x, self.y, self.ideal = x, y, ideal

    def __len__(self):
        return self.y.shape[0]

    def batch(self, index):
        index = torch.as_tensor(index, dtype=torch.long)
        xy = self.x.index_select(0, index), self.y.index_select(0, index)
        return xy if self.ideal is None else xy + (self.ideal.index_select(0, index),)

    def compact(self):
        """``(x, y)`` as stored: what :func:`neurocode.training.loop.fit` indexes."""
        return self.x, self.y

    @staticmethod
    def expand(x):
        """Dense float inputs ``[b, steps, features]`` from a stored batch."""
        return x


class _Temporal:
    """Temporal images stored as one ``int8`` spike step per pixel; expanded per batch."""

    def __init__(self, data):
        self.data, self.steps = data, data.steps

    def __len__(self):
        return len(self.data)

    def batch(self, index):
        return self.data.batch(index)

    def compact(self):
        return self.data.times, self.data.labels

    def expand(self, times):
        t = times.long()
        return (t[:, None, :] == torch.arange(self.steps)[None, :, None]).float()


def load_task(task, seed=0, n_train=None, keywords_root=None, stream=None, n_test=None):
    """``(train, test, n_in, n_classes, info)`` for a task.

    ``train`` and ``test`` have ``len``, ``batch(idx) -> (x, y)`` (dense inputs),
    ``compact() -> (x, y)`` (the stored form) and ``expand(x)`` (stored -> dense).
    For a toy task, ``stream`` (a :class:`neurocode.data.toy.FreshBatches`) replaces the fixed
    training set (``train`` is the stream) and draws the test set (``n_test`` sequences,
    :data:`FRESH_TEST` by default); spotting's test batches carry the ideal decision steps.
    """
    if task == "spotting" or task == "noise":
        from neurocode.data.toy import TASKS as TOY
        if stream is None:
            tr, te = TOY[task](n_train or 4000, seed=seed), TOY[task](n_test or 1000, seed=seed + 10_000)
            train = _Tensors(*tr.tensors())
        else:
            train, te = stream, stream.test(n_test or FRESH_TEST)
        ideal = torch.from_numpy(te.ideal_step) if task == "spotting" else None
        return (train, _Tensors(*te.tensors(), ideal=ideal), 1, 2,
                {"encoding": "current", "steps": te.x.shape[1]})
    if stream is not None:
        raise ConfigError(f"fresh training data exists for the toy tasks only, not '{task}'")
    if task in ("mnist", "fashion_mnist"):
        from neurocode.data.temporal import load_temporal
        name = "mnist5k" if task == "mnist" else "fashion_mnist"
        tr, te = load_temporal(name, "train"), load_temporal(name, "test")
        if n_train:
            keep = np.random.default_rng(seed).permutation(len(tr))[:n_train]
            tr.times, tr.labels = tr.times[keep], tr.labels[keep]
        return (_Temporal(tr), _Temporal(te), tr.n_inputs, 10,
                {"encoding": "spikes", "steps": tr.steps, "dataset": name})
    if task == "keywords":
        from neurocode.data.keywords import load_keywords
        tr, te = load_keywords("train", root=keywords_root), load_keywords("test", root=keywords_root)
        mean, std = tr.x.mean((0, 1)), tr.x.std((0, 1)) + 1e-6
        xtr, xte = (torch.from_numpy((d.x - mean) / std) for d in (tr, te))
        return (_Tensors(xtr, torch.from_numpy(tr.y)), _Tensors(xte, torch.from_numpy(te.y)),
                tr.x.shape[2], len(tr.words), {"encoding": "current", "steps": tr.x.shape[1]})
    raise ValueError(f"unknown task '{task}'; choose from {TASKS}")


def batches(data, batch_size, shuffle=False, generator=None):
    """Yield ``(x, y)`` batches of ``data`` (anything with ``len`` and ``batch(idx)``)."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for k in range(0, n, batch_size):
        yield data.batch(order[k:k + batch_size])


def trainable_populations(names):
    """Trainable parameters by population from names ``"tau_m"`` (hidden) or ``"out.tau_m"``.

    >>> trainable_populations(["tau_m", "tau_a", "out.tau_m"])
    {'hidden': ['tau_m', 'tau_a'], 'out': ['tau_m']}
    """
    out = {}
    for name in names:
        pop, _, param = name.rpartition(".")
        if pop not in ("", "hidden", "out") or not param:
            raise ConfigError(f"trainable parameter {name!r}: write 'NAME' (hidden population) or "
                             "'hidden.NAME' / 'out.NAME'")
        out.setdefault(pop or "hidden", []).append(param)
    return out


def build_model(kind, n_in, n_classes, hidden, encoding, seed=0, dt=1e-3, card="alif", input_dropout=0.0,
                trainable=None):
    """An :class:`LSTMClassifier` (``kind="lstm"``) or :class:`SpikingRCClassifier` (``"spiking"``).

    ``trainable``: per-neuron card parameters of the spiking model to train (see
    :func:`trainable_populations`).
    """
    from neurocode.torch.classifiers import LSTMClassifier, SpikingRCClassifier
    torch.manual_seed(seed)
    if kind == "lstm":
        if trainable:
            raise ConfigError("trainable card parameters need the spiking model, not the LSTM")
        return LSTMClassifier(n_in, n_classes, hidden, input_dropout=input_dropout)
    if kind == "spiking":
        scale = 6.0 if encoding == "spikes" else 15.0
        return SpikingRCClassifier(n_in, n_classes, hidden, dt=dt, hidden_card=card,
                                   input_encoding=encoding, input_scale=scale, seed=seed,
                                   trainable=trainable_populations(trainable or ()))
    raise ValueError(f"unknown model '{kind}'; choose 'lstm' or 'spiking'")


def train_run(task, model="lstm", mode="rc", theta=0.95, beta=0.0, epochs=5, lr=1e-3,
              batch_size=64, hidden=125, seed=0, n_train=None, thetas=None, out=None,
              activation="sigmoid", card="alif", keywords_root=None, resume=True, progress=False,
              input_dropout=0.0, train_params=(), param_lr=None, data="fixed", epoch_sequences=100_000,
              n_test=None):
    """Train one network with :func:`neurocode.training.loop.fit` and evaluate it with early exit.

    The run folder ``out`` (a temporary folder if ``None``) has the trainer's one format
    (:mod:`neurocode.training.loop`): ``config.toml``, ``checkpoint.pt``, per-epoch
    ``metrics.json|csv`` (test early-exit accuracy and mean decision step after every epoch,
    wall time per epoch), and at the end ``summary.json`` (the returned dict), ``model.pt``
    and, for the spiking model, ``network.npz``.
    A killed run resumes from its checkpoint; a finished one is read back without training
    (``epochs`` may be raised to continue it).

    ``thetas``: extra read-out thresholds for the speed-accuracy curve of the trained network.
    The spiking model decides at its first output spike (``theta`` 0.5 in training and
    read-out); ``thetas`` is ignored for it. ``input_dropout`` applies to the LSTM only.
    ``train_params`` names card parameters of the spiking model trained per neuron with the
    weights (``"tau_m"`` for the hidden population, ``"out.tau_m"`` for the outputs), with
    learning rate ``param_lr`` (default ``lr``); the saved ``network.npz`` holds their trained values.

    ``data="fresh"`` (toy tasks): every training step draws a new batch
    (:class:`neurocode.data.toy.FreshBatches`, seeded by the run seed and step); an epoch is
    ``epoch_sequences`` sequences (rounded up to whole batches), so the run sees
    ``epochs * epoch_sequences`` sequences; ``n_train`` is then unused and the test set is a
    held-out draw of ``n_test`` sequences (:data:`FRESH_TEST`). On spotting every evaluation
    adds the :class:`~neurocode.objectives.spotting.SpottingScore` (default costs) of the answers.

    Returns
    -------
    dict
        ``accuracy``, ``mean_decision_step`` (0-based), ``steps_saved_frac``,
        ``last_step_accuracy`` and ``last_step`` (answers after the whole sequence, no early
        exit: :func:`~neurocode.objectives.rank_coding.evaluate_last_step`),
        ``epoch_seconds`` (mean training wall time per epoch), ``history`` and ``curve``
        (one early-exit evaluation per read-out threshold), plus the configuration; on
        spotting also ``score`` and ``score_costs``.
    """
    import tempfile

    from neurocode.objectives.rank_coding import last_step_loss, rank_coding_loss
    from neurocode.training.loop import NETWORK, check_resume, fit, load_checkpoint, write_config

    check_table({"task": task, "model": model, "mode": mode, "theta": theta, "beta": beta, "epochs": epochs,
                 "lr": lr, "batch_size": batch_size, "hidden": hidden, "seed": seed, "n_train": n_train,
                 "activation": activation, "card": card, "input_dropout": input_dropout, "param_lr": param_lr,
                "data": data, "epoch_sequences": epoch_sequences, "n_test": n_test},
                OPTIONS, "")
    if data == "fresh" and task not in ("spotting", "noise"):
        raise ConfigError(f"data = 'fresh': fresh training data exists for the toy tasks only, not '{task}'")
    if model == "spiking":
        theta, thetas = 0.5, None
    config = {"task": task, "model": model, "mode": mode, "theta": theta, "beta": beta,
              "epochs": epochs, "lr": lr, "batch_size": batch_size, "hidden": hidden,
              "seed": seed, "n_train": n_train, "activation": activation,
              "card": card if model == "spiking" else None}
    if model == "lstm" and input_dropout:
        config["input_dropout"] = input_dropout
    if train_params:
        config["train_params"] = list(train_params)
        config["param_lr"] = lr if param_lr is None else param_lr
    stream = None
    if data == "fresh":
        from neurocode.data.toy import FreshBatches
        stream = FreshBatches(task, batch_size, -(-epoch_sequences // batch_size), seed)
        config.update(data="fresh", epoch_sequences=len(stream), n_train=None, n_test=n_test or FRESH_TEST)
    elif n_test:
        config["n_test"] = n_test
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="rank-coding-")
        out = tmp.name
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"run folder {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    check_resume(out, config, resume)
    write_config(out, config)
    tr, te, n_in, n_classes, info = load_task(task, seed, n_train, keywords_root, stream, n_test)
    net = build_model(model, n_in, n_classes, hidden, info["encoding"], seed, card=card,
                      input_dropout=input_dropout if model == "lstm" else 0.0, trainable=train_params)
    # trainable card parameters (the only parameters of the runner's population dynamics)
    cards = list(net.runner.dynamics.parameters()) if train_params else []
    groups = [{"params": [p for p in net.parameters() if all(p is not q for q in cards)]}]
    if cards:
        groups.append({"params": cards, "lr": config["param_lr"]})
    opt = torch.optim.Adam(groups, lr)
    objective = rank_coding_loss if mode == "rc" else last_step_loss
    expand = (lambda xb: xb) if stream is not None else tr.expand
    score = SpottingScore() if task == "spotting" else None

    def loss_fn(m, xb, yb):
        res = objective(m, expand(xb), yb, theta=theta, beta=beta, activation=activation)
        return res.loss, {"accuracy": float((res.prediction == yb).float().mean()),
                          "steps_computed_frac": res.steps_computed / res.steps_total}

    def eval_fn(m):
        return evaluate(m, batches(te, 500), theta=theta, activation=activation, score=score)

    history = fit(net, loss_fn, stream if stream is not None else tr.compact(), eval_fn, out, epochs, opt, seed=seed,
                  batch_size=batch_size, resume=resume, checkpoint_every=50, progress=progress)
    if len(history) < epochs:    # stopped early (stop_after_steps is not used here)
        raise RuntimeError(f"training in {out} stopped after {len(history)} of {epochs} epochs")
    if (out / "checkpoint.pt").is_file():
        load_checkpoint(out / "checkpoint.pt", net)
    curve = []
    for th in sorted(set([theta] + list(thetas or []))):
        ev = evaluate(net, batches(te, 500), theta=th, activation=activation, score=score)
        curve.append({"theta": th, **ev})
    main = next(c for c in curve if c["theta"] == theta)
    last = evaluate_last_step(net, batches(te, 500), activation, score=score)
    metrics = {**config, "steps": info["steps"],
               "accuracy": main["accuracy"], "mean_decision_step": main["mean_decision_step"],
               "last_step_accuracy": last["accuracy"], "last_step": last,
               "steps_saved_frac": main["steps_saved_frac"],
               "epoch_seconds": float(np.mean([h["wall_s"] for h in history[:epochs]])),
               "history": history[:epochs], "curve": curve}
    if score is not None:
        metrics["score"] = main["score"]
        metrics["score_costs"] = {"wrong": score.wrong, "premature": score.premature, "late": score.late}
    write_json(out / "summary.json", metrics)
    with atomic_path(out / "model.pt") as path:
        torch.save(net.state_dict(), path)
    if model == "spiking":
        net.to_spec(steps=info["steps"], theta=theta, task=task, dataset=info.get("dataset", task),
                    mode=mode, epochs=epochs, seed=seed,
                    torch_test={"accuracy": main["accuracy"], "n": main["n"],
                                "mean_decision_step": main["mean_decision_step"] + 1}).save(out / NETWORK)
    if tmp is not None:
        tmp.cleanup()
    return metrics

