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

from neurocode.checks import check_memory
from neurocode.data.images import DATASETS
from neurocode.errors import ConfigError, DatasetError, DeviceError
from neurocode.io import write_json
from neurocode.objectives.decision import first_spike_decision
from neurocode.objectives.ssr import MSSR_READINGS, REGULARISERS
from neurocode.training.loop import NETWORK, check_resume, fit, write_config
from neurocode.training.options import Option, check_table

DEFAULTS = {
    "seed": 0,
    "device": "cpu",
    "data": {"name": "fashion_mnist", "root": "", "train_subset": 0, "test_subset": 0},
    "network": {"neuron": "ramp", "sizes": [784, 400, 10], "t_input": 1.0, "window": 1.0, "v_th": 1.0,
                "init_mean": 2.0, "init_std": 1.0, "silent_grad": 0.0, "out_margin": 8.0},
    "loss": {},
    "train": {"epochs": 5, "batch_size": 128, "lr": 1e-3, "lr_decay": 1.0, "checkpoint_every": 100,
              "eval_batch": 1000},
}


#: The TTFS neurons a config can train: ``ramp`` (the ``ttfs`` card, :class:`~neurocode.torch.ttfs.TTFSNetwork`)
#: and ``constant_slope`` (the ``ttfs_slope`` card, :class:`~neurocode.torch.constant_slope.ConstantSlopeNetwork`).
NEURONS = ("ramp", "constant_slope")
#: ``[network]`` keys that only one neuron reads; setting one for the other neuron is an error.
NEURON_KEYS = {"ramp": ("v_th", "init_mean", "init_std"), "constant_slope": ("out_margin",)}

_POSITIVE, _NONNEGATIVE = Option(float, low=0, inclusive=False), Option(float, low=0)
#: Type and range of every config value; a key not listed here is an error.
SCHEMA = {
    "seed": Option(int, low=0),
    "device": Option(str),
    "data": {"name": Option(str, choices=DATASETS), "root": Option(str), "train_subset": Option(int, low=0),
             "test_subset": Option(int, low=0)},
    "network": {"neuron": Option(str, choices=NEURONS), "sizes": Option(list, min_length=2), "t_input": _POSITIVE,
                "window": _POSITIVE, "v_th": _POSITIVE, "init_mean": Option(float), "init_std": _NONNEGATIVE,
                "silent_grad": _NONNEGATIVE, "out_margin": _NONNEGATIVE},
    "loss": {"tau_soft": _POSITIVE, "gamma_temporal": _NONNEGATIVE, "t_ref": Option(float, nullable=True),
             "gamma_l2": _NONNEGATIVE, "gamma_silent": _NONNEGATIVE, "regulariser": Option(str, choices=REGULARISERS),
             "gamma": _NONNEGATIVE, "v_hat": _POSITIVE, "mssr": Option(str, choices=MSSR_READINGS)},
    "train": {"epochs": Option(int, low=1), "batch_size": Option(int, low=1), "lr": _POSITIVE,
              "lr_decay": _POSITIVE, "checkpoint_every": Option(int, low=0), "eval_batch": Option(int, low=1)},
}


def load_config(path_or_dict, overrides=None):
    """A TTFS config (TOML path or dict) merged over :data:`DEFAULTS`, with ``overrides``.

    ``overrides`` maps dotted keys to values: ``{"loss.gamma": 1e-3}``. Unknown sections
    or keys, and values of the wrong type or out of range (:data:`SCHEMA`), raise
    :class:`~neurocode.errors.ConfigError` naming the file (or ``--set``) and the key.

    >>> load_config({"train": {"epoch": 2}})
    Traceback (most recent call last):
    ...
    neurocode.errors.ConfigError: config: unknown key 'train.epoch'; known: ['train.batch_size', ...]
    """
    source = "config"
    if isinstance(path_or_dict, (str, Path)):
        path = Path(path_or_dict)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"no config file at {path}")
        try:
            with open(path, "rb") as fh:
                user = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    else:
        user = copy.deepcopy(dict(path_or_dict))
    config = copy.deepcopy(DEFAULTS)
    try:
        _merge(config, user, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        try:
            _merge(config, {section: {key: value}} if key else {section: value}, "")
        except ConfigError as exc:
            raise ConfigError(f"--set {dotted}: {exc}") from None
    return config


def _merge(config, user, where):
    """Check ``user`` against :data:`SCHEMA` and merge it into ``config``."""
    for key, value in user.items():
        if key not in SCHEMA:
            raise ConfigError(f"unknown key '{key}'; known: {sorted(SCHEMA)}")
        if isinstance(SCHEMA[key], dict):
            config[key].update(check_table(value, SCHEMA[key], f"{key}."))
        else:
            config[key] = SCHEMA[key].check(value, key)


def _loss_defaults(config):
    """Loss settings with their defaults filled in, so a run written before a loss setting
    existed resumes when the new setting keeps its default."""
    from neurocode.objectives.ssr import SSRLoss

    return {**config, "loss": SSRLoss.from_config(config.get("loss", {})).as_dict()}


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
            answer = first_spike_decision(times[-1].cpu().numpy())
            correct += int((answer == y[s:s + batch].numpy()).sum())
            counts = [(tl < te).sum(0).double().cpu() for tl, te in zip(times[:-1], net.windows[:-1])]
            fired = counts if fired is None else [a + b for a, b in zip(fired, counts)]
    rates = [float(f.mean()) / n for f in fired]
    out = {"accuracy": correct / n, "spikes_per_hidden_neuron": float(np.mean(rates)) if rates else 0.0}
    out.update({f"spikes_layer{k + 1}": r for k, r in enumerate(rates)})
    return out


def build_ttfs(config):
    """``(network, loss, device)`` of a checked config; the memory the weights and Adam need is estimated first."""
    from neurocode.objectives.ssr import SSRLoss

    sizes = config["network"]["sizes"]
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    check_memory(16 * n_weights, f"network.sizes = {sizes} ({n_weights} weights, gradients and Adam's state)",
                 error=ConfigError)
    try:
        loss = SSRLoss.from_config(config["loss"])
        device = torch.device(config["device"])
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"config: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("config asks for device 'cuda' but torch sees no CUDA GPU; set device = \"cpu\"")
    torch.manual_seed(config["seed"])
    return _network(config), loss, device


def _network(config):
    """The network a checked config describes (its ``network.neuron``)."""
    from neurocode.torch.constant_slope import ConstantSlopeNetwork
    from neurocode.torch.ttfs import TTFSNetwork

    network = dict(config["network"])
    neuron = network.pop("neuron")
    for other, keys in NEURON_KEYS.items():
        for key in keys:
            value = network.pop(key)
            if other != neuron and value != DEFAULTS["network"][key]:
                raise ConfigError(f"network.{key} = {value} applies to neuron = '{other}' only, not '{neuron}'")
            if other == neuron:
                network[key] = value
    if neuron == "constant_slope" and config["loss"].get("gamma_silent"):
        raise ConfigError("loss.gamma_silent applies to neuron = 'ramp' only: constant-slope outputs pass the "
                          "gradient of their extrapolated crossing; set it to 0")
    cls = ConstantSlopeNetwork if neuron == "constant_slope" else TTFSNetwork
    return cls(seed=config["seed"], **network)


def train_ttfs(config, run_dir, resume=True, progress=True, stop_after_steps=None, overrides=None):
    """Train a TTFS network from ``config`` (path or dict) into ``run_dir``; returns the metrics.

    Writes ``config.toml`` (the merged config), ``checkpoint.pt``, ``metrics.json|csv``
    and at the end ``network.npz`` (the NetworkSpec with trained weights) and
    ``summary.json`` (the last epoch's metrics).
    """
    config = load_config(config, overrides)
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file; give a folder")
    net, loss, device = build_ttfs(config)
    config["loss"] = {k: v for k, v in loss.as_dict().items() if v is not None}
    check_resume(run_dir, config, resume, _loss_defaults)
    tr, te = config_dataset(config, "train"), config_dataset(config, "test")
    n_out = config["network"]["sizes"][-1]
    for split, (t, y) in (("train", tr), ("test", te)):
        if t.shape[1] != config["network"]["sizes"][0]:
            raise ConfigError(f"network.sizes[0] = {config['network']['sizes'][0]}, but the {split} images of "
                              f"'{config['data']['name']}' have {t.shape[1]} pixels")
        if len(y) and not 0 <= int(y.min()) <= int(y.max()) < n_out:
            raise DatasetError(f"'{config['data']['name']}' {split} labels lie in [{int(y.min())}, {int(y.max())}], "
                               f"outside the {n_out} output neurons (network.sizes[-1])")
    write_config(run_dir, config)
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
        spec.save(run_dir / NETWORK)
        write_json(run_dir / "summary.json", {**history[-1], "config": config})
    return history
