"""``neurocode train CONFIG --out RUN_DIR``: train a TTFS network from a TOML config."""

import json

from neurocode.errors import ConfigError
from neurocode.training.ttfs import train_ttfs


def _parse_set(items):
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set takes SECTION.KEY=VALUE (e.g. loss.gamma=1e-3), got '{item}'")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def register(sub):
    parser = sub.add_parser("train", help="train a TTFS network (SSR study) from a config",
                            description="Train a time-to-first-spike network with exact spike-time "
                                        "gradients from a TOML config; resumes from RUN_DIR's checkpoint.")
    parser.add_argument("config", help="TOML config (see studies/ssr/*.toml)")
    parser.add_argument("--out", required=True, help="run folder (config, checkpoint, metrics, network.npz)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set loss.gamma=1e-3 (repeatable)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args):
    history = train_ttfs(args.config, args.out, resume=not args.no_resume, progress=not args.quiet,
                         overrides=_parse_set(args.set))
    if history:
        last = history[-1]
        print(f"epoch {last['epoch']}: accuracy {last['accuracy']:.4f}, "
              f"spikes per hidden neuron {last['spikes_per_hidden_neuron']:.3f} -> {args.out}")
    return 0
