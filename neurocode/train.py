"""Training loop with atomic checkpoints, exact resume, seeds and per-epoch metrics.

:func:`fit` is generic: any ``torch.nn.Module``, a ``loss_fn(model, x, y) -> (loss, parts)``
and an ``eval_fn(model) -> dict``. A run folder holds

* ``checkpoint.pt`` -- model, optimizer, epoch, step within the epoch, metrics so far;
  written atomically every ``checkpoint_every`` steps and at each epoch's end;
* ``metrics.json`` / ``metrics.csv`` -- one row per epoch (training-loss parts, eval metrics).

Batches are drawn from a permutation seeded by ``(seed, epoch)``, so a run killed at any
point and resumed from its checkpoint produces the same weights as an uninterrupted one.

:func:`train_ttfs` reads a TOML config (see ``studies/ssr/*.toml``) and trains a
:class:`~neurocode.surrogate.ttfs.TTFSNetwork` with an :class:`~neurocode.objectives.ssr.SSRLoss`,
writing also ``config.toml`` and the trained ``network.npz`` (a NetworkSpec).
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neurocode.io import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


# -- checkpoints ---------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer, state):
    """Write model and optimizer state plus ``state`` (a dict) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "state": state}, tmp)
    return Path(path)


def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    """Restore ``model`` (and ``optimizer``) from ``path``; returns the saved ``state`` dict."""
    data = torch.load(path, map_location=map_location, weights_only=False)
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
def fit(model, loss_fn, train_data, eval_fn, run_dir, epochs, optimizer, seed=0, batch_size=128,
        resume=True, checkpoint_every=200, device=None, progress=True, stop_after_steps=None, lr_decay=1.0):
    """Train ``model`` for ``epochs`` epochs with checkpoints and exact resume.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
        ``loss_fn(model, x, y) -> (loss, parts)``; ``parts`` is a dict of floats that is
        averaged over the epoch into the metrics (``train_<name>``).
    train_data : tuple of Tensor
        ``(x, y)`` with the samples along dimension 0 (kept on the CPU; batches move to ``device``).
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
    x, y = train_data
    n = len(x)
    if n == 0 or len(y) != n:
        raise ValueError(f"train_data must be (x, y) with the same non-zero length, got {len(x)} and {len(y)}")
    steps_per_epoch = (n + batch_size - 1) // batch_size
    state = {"epoch": 0, "step": 0, "history": [], "sums": {}, "seed": seed, "wall_s": 0.0}
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer, map_location=device or "cpu")
        if state["seed"] != seed:
            raise ValueError(f"{ckpt} was written with seed {state['seed']}, this run asks for seed {seed}")
        log.info("resuming %s at epoch %d, step %d", run_dir, state["epoch"], state["step"])
    torch.manual_seed(seed + 7919 * state["epoch"] + state["step"])
    ran = 0
    while state["epoch"] < epochs:
        epoch = state["epoch"]
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))
        for group in optimizer.param_groups:   # "initial_lr" travels with the optimizer's checkpoint
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * lr_decay ** epoch
        model.train()
        bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        t0 = time.time()
        while state["step"] < steps_per_epoch:
            idx = order[state["step"] * batch_size:(state["step"] + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if device is not None:
                xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss, parts = loss_fn(model, xb, yb)
            loss.backward()
            optimizer.step()
            parts = {"loss": float(loss.detach()), **parts}
            for key, value in parts.items():
                state["sums"][key] = state["sums"].get(key, 0.0) + value * len(idx)
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


# -- TTFS / SSR runs from a config -----------------------------------------------------------
DEFAULTS = {
    "seed": 0,
    "device": "cpu",
    "data": {"name": "fashion_mnist", "root": "", "train_subset": 0, "test_subset": 0},
    "network": {"sizes": [784, 400, 10], "t_input": 1.0, "window": 1.0, "v_th": 1.0,
                "init_mean": 2.0, "init_std": 1.0, "silent_grad": 0.0},
    "loss": {},
    "train": {"epochs": 5, "batch_size": 128, "lr": 1e-3, "lr_decay": 1.0, "checkpoint_every": 100,
              "eval_batch": 1000},
}


def load_config(path_or_dict, overrides=None):
    """A TTFS config (TOML path or dict) merged over :data:`DEFAULTS`, with ``overrides``.

    ``overrides`` maps dotted keys to values: ``{"loss.gamma": 1e-3}``. Unknown sections
    or keys are an error naming them.
    """
    if isinstance(path_or_dict, (str, Path)):
        path = Path(path_or_dict)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        with open(path, "rb") as fh:
            user = tomllib.load(fh)
    else:
        user = copy.deepcopy(dict(path_or_dict))
    config = copy.deepcopy(DEFAULTS)
    for key, value in user.items():
        if key not in config:
            raise ValueError(f"unknown config key '{key}'; known: {sorted(config)}")
        if isinstance(config[key], dict):
            if key != "loss":
                unknown = set(value) - set(config[key])
                if unknown:
                    raise ValueError(f"unknown key(s) {sorted(unknown)} in [{key}]; known: {sorted(config[key])}")
            config[key].update(value)
        else:
            config[key] = value
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            config[section] = value
        else:
            config.setdefault(section, {})[key] = value
    return config


def _to_toml(config):
    lines = []

    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(e) for e in v) + "]"
        if v is None:
            raise ValueError("TOML has no null: leave the key out instead")
        return repr(v)

    for key, value in config.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {fmt(value)}")
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {fmt(v)}" for k, v in value.items() if v is not None)
    return "\n".join(lines) + "\n"


def _same_run(saved, config):
    """Whether ``saved`` (a run's config.toml) describes ``config`` up to ``train.epochs``."""
    with open(saved, "rb") as fh:
        old = tomllib.load(fh)
    new = tomllib.loads(_to_toml(config))
    old.get("train", {}).pop("epochs", None)
    new.get("train", {}).pop("epochs", None)
    return old == new


def config_images(config, split):
    """The ``[data]`` images of ``split`` a run trains or tests on: pixels in [0, 1], (N, 784),
    and labels, reduced to the config's ``train_subset`` / ``test_subset`` (0: all) by its seed."""
    from neurocode.data import load_images

    data = config["data"]
    x, y = load_images(data["name"], split, root=data["root"] or None)
    subset = data["train_subset" if split == "train" else "test_subset"]
    if subset:
        keep = np.random.default_rng([config["seed"], 1 if split == "train" else 2]).permutation(len(y))[:subset]
        x, y = x[np.sort(keep)], y[np.sort(keep)]
    return x, y


def _dataset(config, split):
    from neurocode.data import latency_encode

    x, y = config_images(config, split)
    t = latency_encode(x, config["network"]["t_input"])
    return torch.from_numpy(np.ascontiguousarray(t)), torch.from_numpy(y)


def evaluate_ttfs(net, t, y, batch=1000, device="cpu"):
    """Accuracy (first output spike wins) and spikes per hidden neuron, per layer and mean."""
    correct, fired, n = 0, None, len(y)
    with torch.no_grad():
        for s in range(0, n, batch):
            times = net(t[s:s + batch].to(device))
            correct += int((times[-1].argmin(1).cpu() == y[s:s + batch]).sum())
            counts = [(tl < te).sum(0).double().cpu() for tl, te in zip(times[:-1], net.windows[:-1])]
            fired = counts if fired is None else [a + b for a, b in zip(fired, counts)]
    rates = [float(f.mean()) / n for f in fired]
    out = {"accuracy": correct / n, "spikes_per_hidden_neuron": float(np.mean(rates)) if rates else 0.0}
    out.update({f"spikes_layer{k + 1}": r for k, r in enumerate(rates)})
    return out


def train_ttfs(config, run_dir, resume=True, progress=True, stop_after_steps=None, overrides=None):
    """Train a TTFS network from ``config`` (path or dict) into ``run_dir``; returns the metrics.

    Writes ``config.toml`` (the merged config), ``checkpoint.pt``, ``metrics.json|csv``
    and at the end ``network.npz`` (the NetworkSpec with trained weights) and
    ``summary.json`` (the last epoch's metrics).
    """
    from neurocode.objectives.ssr import SSRLoss
    from neurocode.surrogate.ttfs import TTFSNetwork

    config = load_config(config, overrides)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    loss = SSRLoss.from_config(config["loss"])
    config["loss"] = {k: v for k, v in loss.as_dict().items() if v is not None}
    saved = run_dir / "config.toml"
    text = _to_toml(config)
    if resume and saved.is_file() and not _same_run(saved, config):
        raise ValueError(f"{run_dir} holds a run with a different config; use another folder or resume=False")
    write_text(saved, text)
    device = torch.device(config["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but torch sees no CUDA GPU; set device = \"cpu\"")
    torch.manual_seed(config["seed"])
    net = TTFSNetwork(seed=config["seed"], **config["network"]).to(device)
    tr, te = _dataset(config, "train"), _dataset(config, "test")
    train = config["train"]
    optimizer = torch.optim.Adam(net.parameters(), lr=train["lr"])

    def loss_fn(model, xb, yb):
        times = model(xb)
        return loss(model, xb, times, yb)

    def eval_fn(model):
        return evaluate_ttfs(model, *te, batch=train["eval_batch"], device=device)

    history = fit(net, loss_fn, tr, eval_fn, run_dir, train["epochs"], optimizer, seed=config["seed"],
                  batch_size=train["batch_size"], resume=resume, checkpoint_every=train["checkpoint_every"],
                  device=device, progress=progress, stop_after_steps=stop_after_steps, lr_decay=train["lr_decay"])
    if len(history) == train["epochs"]:
        spec = net.to("cpu").to_spec(seed=config["seed"])
        spec.metadata["dataset"] = config["data"]["name"]        # what `neurocode validate` presents
        spec.save(run_dir / "network.npz")
        write_json(run_dir / "summary.json", {**history[-1], "config": config})
    return history
