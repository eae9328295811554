"""TTFS / SSR training task: a TOML config (see ``studies/ssr/*.toml``) trains a
:class:`~neurocode.torch.ttfs.TTFSNetwork` with an :class:`~neurocode.objectives.ssr.SSRLoss`
through :func:`neurocode.training.loop.fit`, writing also ``config.toml`` and the trained
``network.npz`` (a NetworkSpec).

>>> load_config({"train": {"epochs": 2}})["train"]["epochs"]
2
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import numpy as np
import torch

from neurocode.io import write_json, write_text
from neurocode.training.loop import fit

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
    """Whether ``saved`` (a run's config.toml) describes ``config`` up to ``train.epochs``.

    Loss settings are compared with their defaults filled in, so a run written before a
    loss setting existed resumes when the new setting keeps its default.
    """
    from neurocode.objectives.ssr import SSRLoss

    with open(saved, "rb") as fh:
        old = tomllib.load(fh)
    new = tomllib.loads(_to_toml(config))
    for cfg in (old, new):
        cfg.get("train", {}).pop("epochs", None)
        cfg["loss"] = SSRLoss.from_config(cfg.get("loss", {})).as_dict()
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


def config_dataset(config, split):
    """The encoded ``split`` of a config: spike times (N, 784) and labels, as tensors."""
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
    from neurocode.torch.ttfs import TTFSNetwork

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
    tr, te = config_dataset(config, "train"), config_dataset(config, "test")
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
