"""Training loop with atomic checkpoints, exact resume, seeds and per-epoch metrics.

:func:`fit` is generic: any ``torch.nn.Module``, a ``loss_fn(model, x, y) -> (loss, parts)``
and an ``eval_fn(model) -> dict``. Every training run, whatever its task, writes one
run-folder format:

* ``config.toml`` -- the run's full configuration (:func:`write_config`), compared with the
  asked one before a resume (:func:`check_resume`, the one resume check);
* ``checkpoint.pt`` -- model, optimizer, epoch, step within the epoch, metrics so far;
  written atomically every ``checkpoint_every`` steps and at each epoch's end;
* ``metrics.json`` / ``metrics.csv`` -- one row per epoch (training-loss parts, eval metrics);
* ``summary.json`` (the final metrics) and ``network.npz`` (the trained NetworkSpec, where
  the model is a spiking network) at the end.

Batches are drawn from a permutation seeded by ``(seed, epoch)`` -- or, for a stream of fresh
data (an object with ``steps_per_epoch`` and ``draw(epoch, step) -> (x, y)``, e.g.
:class:`neurocode.data.toy.FreshBatches`), drawn by the stream from ``(epoch, step)`` -- so a run
killed at any point and resumed from its checkpoint produces the same weights as an
uninterrupted one.

The task modules (:mod:`neurocode.training.ttfs`, :mod:`neurocode.training.rank_coding`)
build a model, a loss and data from a config and call :func:`fit`.
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurocode.errors import ConfigError, DatasetError
from neurocode.io import atomic_path, to_toml, write_json, write_text

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.toml"
NETWORK = "network.npz"


def _without_epochs(config):
    """``config`` without the number of epochs (top level or ``[train]``), which a resume may raise."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items() if k != "epochs"}
    out.get("train", {}).pop("epochs", None)
    return out


def check_resume(run_dir, config, resume=True, normalise=None):
    """Refuse to resume ``run_dir`` when its checkpointed run has another configuration.

    The saved ``config.toml`` and ``config`` are compared as TOML (``None`` means "not set")
    without the number of epochs, after ``normalise(config) -> config`` (e.g. filling in
    defaults added since the run was written). Nothing is checked when ``resume`` is False.
    """
    run_dir = Path(run_dir)
    saved = run_dir / CONFIG
    if not (resume and (run_dir / CHECKPOINT).is_file() and saved.is_file()):
        return
    import tomllib

    normalise = normalise or (lambda c: c)
    try:
        old = tomllib.loads(saved.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{saved}: not valid TOML ({exc}); start over with --no-resume (resume=False)") from None
    new = tomllib.loads(to_toml(config))
    if _without_epochs(normalise(old)) != _without_epochs(normalise(new)):
        raise ConfigError(f"{run_dir} holds a run with a different config; use another folder, or start over "
                          "in this one (--no-resume, resume=False)")


def write_config(run_dir, config):
    """Write ``config`` as the run folder's ``config.toml`` (atomically)."""
    return write_text(Path(run_dir) / CONFIG, to_toml(config))


# -- checkpoints ---------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer, state):
    """Write model and optimizer state plus ``state`` to ``path`` atomically.

    ``state`` holds only plain containers, numbers and strings, so that the file loads with
    ``torch.load(weights_only=True)``: a checkpoint never runs code when it is read.
    """
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "state": _plain(state)}, tmp)
    return Path(path)


def _plain(obj):
    """``obj`` with numpy scalars and arrays as Python numbers and lists (what ``weights_only`` reads)."""
    if isinstance(obj, dict):
        return {key: _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value) for value in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj


def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    """Restore ``model`` (and ``optimizer``) from ``path``; returns the saved ``state`` dict.

    Read with ``weights_only=True``: tensors and plain containers only, never pickled code.
    """
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ConfigError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                          "delete it to start over") from None
    model.load_state_dict(data["model"])
    if optimizer is not None:
        optimizer.load_state_dict(data["optimizer"])
    return data["state"]


def _write_metrics(run_dir, history):
    write_json(run_dir / "metrics.json", history)
    if history:
        keys = list(dict.fromkeys(k for row in history for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        write_text(run_dir / "metrics.csv", buf.getvalue())


# -- the loop ------------------------------------------------------------------------------
class _Shuffled:
    """Fixed ``(x, y)`` as a stream: epoch ``e`` draws its batches from a permutation seeded by ``(seed, e)``."""

    def __init__(self, x, y, batch_size, seed):
        if len(x) == 0 or len(y) != len(x):
            raise DatasetError(f"train_data must be (x, y) with the same non-zero length, got {len(x)} and {len(y)}")
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.steps_per_epoch = (len(x) + batch_size - 1) // batch_size
        self._epoch, self._order = None, None

    def __len__(self):
        return len(self.x)

    def draw(self, epoch, step):
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(len(self.x)))
        idx = self._order[step * self.batch_size:(step + 1) * self.batch_size]
        return self.x[idx], self.y[idx]


def fit(model, loss_fn, train_data, eval_fn, run_dir, epochs, optimizer, seed=0, batch_size=128,
        resume=True, checkpoint_every=200, device=None, progress=True, stop_after_steps=None, lr_decay=1.0):
    """Train ``model`` for ``epochs`` epochs with checkpoints and exact resume.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
        ``loss_fn(model, x, y) -> (loss, parts)``; ``parts`` is a dict of floats that is
        averaged over the epoch into the metrics (``train_<name>``).
    train_data : tuple of Tensor, or a stream
        ``(x, y)`` with the samples along dimension 0 (kept on the CPU; batches move to
        ``device``), or a stream of fresh batches: an object with ``steps_per_epoch`` (int),
        ``len`` (examples per epoch) and ``draw(epoch, step) -> (x, y)`` that returns the same
        batch for the same arguments.
    eval_fn : callable or None
        ``eval_fn(model) -> dict`` of metrics, called after each epoch.
    run_dir : str or Path
        Run folder (created).
    epochs : int
        Total number of epochs.
    optimizer : torch.optim.Optimizer
    seed : int
        Seeds the batch order (per epoch) and ``torch``'s global generator.
    batch_size : int
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` if it exists.
    checkpoint_every : int
        Steps between mid-epoch checkpoints (0: only at epoch ends).
    device : str or torch.device, optional
        Where batches go (the model must already be there).
    stop_after_steps : int, optional
        Stop (after checkpointing) once this many steps ran in this call: simulates a kill.
    lr_decay : float
        Learning rate of epoch ``e`` (0-based) is the optimizer's initial one x ``lr_decay ** e``.

    Returns
    -------
    list of dict
        The per-epoch metrics (also in ``metrics.json``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / CHECKPOINT
    data = train_data if callable(getattr(train_data, "draw", None)) else _Shuffled(*train_data, batch_size, seed)
    steps_per_epoch, n = int(data.steps_per_epoch), len(data)
    if steps_per_epoch < 1:
        raise DatasetError(f"a fresh-data stream needs steps_per_epoch >= 1, got {steps_per_epoch}")
    state = {"epoch": 0, "step": 0, "history": [], "sums": {}, "seed": seed, "wall_s": 0.0}
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer, map_location=device or "cpu")
        if state["seed"] != seed:
            raise ConfigError(f"{ckpt} was written with seed {state['seed']}, this run asks for seed {seed}")
        log.info("resuming %s at epoch %d, step %d", run_dir, state["epoch"], state["step"])
    torch.manual_seed(seed + 7919 * state["epoch"] + state["step"])
    ran = 0
    while state["epoch"] < epochs:
        epoch = state["epoch"]
        for group in optimizer.param_groups:   # "initial_lr" travels with the optimizer's checkpoint
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * lr_decay ** epoch
        model.train()
        bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        t0 = time.time()
        while state["step"] < steps_per_epoch:
            xb, yb = data.draw(epoch, state["step"])
            if device is not None:
                xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss, parts = loss_fn(model, xb, yb)
            if not torch.isfinite(loss):
                raise ConfigError(f"{run_dir}: the training loss is {float(loss)} at epoch {epoch + 1}, step "
                                  f"{state['step'] + 1}; lower the learning rate or check the config's scales")
            loss.backward()
            optimizer.step()
            parts = {"loss": float(loss.detach()), **parts}
            for key, value in parts.items():
                state["sums"][key] = state["sums"].get(key, 0.0) + value * len(yb)
            state["step"] += 1
            ran += 1
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}")
            last = state["step"] == steps_per_epoch
            if not last and (stop_after_steps is not None and ran >= stop_after_steps
                             or checkpoint_every and state["step"] % checkpoint_every == 0):
                state["wall_s"] += time.time() - t0
                t0 = time.time()
                save_checkpoint(ckpt, model, optimizer, state)
            if stop_after_steps is not None and ran >= stop_after_steps and not last:
                bar.close()
                log.info("stopping after %d steps (checkpoint at epoch %d, step %d)", ran, epoch, state["step"])
                return state["history"]
        bar.close()
        state["wall_s"] += time.time() - t0
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v / n for k, v in state["sums"].items()}, "wall_s": state["wall_s"]}
        if eval_fn is not None:
            model.eval()
            with torch.no_grad():
                row.update(eval_fn(model))
        state["history"].append(row)
        state.update(epoch=epoch + 1, step=0, sums={}, wall_s=0.0)
        save_checkpoint(ckpt, model, optimizer, state)
        _write_metrics(run_dir, state["history"])
        log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                      if isinstance(v, float)))
        if stop_after_steps is not None and ran >= stop_after_steps:
            return state["history"]
    return state["history"]
