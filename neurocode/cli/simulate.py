"""``neurocode simulate``: run a card's default network or a saved NetworkSpec in Brian2."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from neurocode.cards.stale import CARD_SOURCES
from neurocode.errors import ConfigError, NetworkSpecError
from neurocode.io import atomic_path, check_output_dir, write_json
from neurocode.units import parse_time

logger = logging.getLogger(__name__)

#: What ``simulate`` writes into ``--out``.
OUTPUTS = ("spikes.npz", "states.npz", "summary.json", "raster.png", "raster.csv")
#: Default network size and seed (a card's default network only).
SIZE, SEED = 200, 0


def register(sub):
    parser = sub.add_parser(
        "simulate", help="simulate a card's default network or a NetworkSpec (.npz) with Brian2",
        description="Simulate with Brian2. CARD_OR_SPEC is a model card name (a recurrent heterogeneous "
                    "network of that card driven by Poisson input) or a NetworkSpec .npz file. Writes "
                    "spikes.npz, states.npz, summary.json and a raster figure (PNG + CSV) into --out.")
    parser.add_argument("model", metavar="CARD_OR_SPEC", help="card name, card .toml file or NetworkSpec .npz")
    parser.add_argument("--device", default="runtime", choices=["runtime", "cpp_standalone", "cuda_standalone"])
    parser.add_argument("--target", default="numpy", choices=["numpy", "cython"],
                        help="code generation target of the runtime device (default: %(default)s)")
    parser.add_argument("--duration", default="1*second",
                        help="simulated time, seconds or a Brian2 quantity like '500*ms' (default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace results of an earlier run in --out")
    parser.add_argument("--size", type=int, default=None,
                        help=f"neurons in a card's default network (default: {SIZE})")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for cpp_standalone")
    parser.add_argument("--seed", type=int, default=None, help=f"seed of a card's default network (default: {SEED})")
    parser.add_argument("--card-source", choices=CARD_SOURCES, default="stored",
                        help="a spec whose card file changed since it was saved: run the card text stored in "
                             "the spec, or the file as it is now (default: %(default)s)")
    parser.add_argument("--record", default="", help="comma-separated state variables to record, e.g. v,I_syn")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress")
    parser.set_defaults(func=run)


def load_spec(model, size, seed, duration, card_source="stored"):
    """A NetworkSpec from a ``.npz`` path, or the default network of a card (name or ``.toml`` path).

    ``size`` and ``seed`` (``None``: defaults) apply to a card's default network only.
    """
    from neurocode.cards.stale import choose_cards
    from neurocode.presets import default_network
    from neurocode.spec import NetworkSpec

    if model.endswith(".npz") or (Path(model).is_file() and not model.endswith(".toml")):
        ignored = [option for option, value in (("--size", size), ("--seed", seed)) if value is not None]
        if ignored:
            raise ConfigError(f"{' and '.join(ignored)} set a card's default network; {model} is a "
                              "NetworkSpec, which has its own size and seed")
        return choose_cards(NetworkSpec.load(model), card_source)
    size = SIZE if size is None else size
    if size < 1:
        raise ConfigError(f"--size must be >= 1, got {size}")
    return default_network(model, size=size, duration=duration, seed=SEED if seed is None else seed)


def parse_record(spec, text):
    """``--record v,I_syn`` as ``{population: [variables it has]}``."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    record = {}
    for pop_name, pop in spec.populations.items():
        known = set(pop.card.equations.names) | set(pop.card.defaults)
        missing = [v for v in names if v not in known]
        if missing and len(spec.populations) == 1:
            raise NetworkSpecError(f"--record: card '{pop.card.name}' has no variable(s) {missing}; "
                                   f"it has {sorted(known)}")
        if [v for v in names if v in known]:
            record[pop_name] = [v for v in names if v in known]
    return record


def run(args):
    from neurocode.brian import simulate

    logging.getLogger("brian2").setLevel(logging.WARNING)
    out = check_output_dir(args.out, OUTPUTS, args.overwrite)
    duration = parse_time(args.duration, "--duration")
    if not 0 < duration < float("inf"):
        raise ConfigError(f"--duration must be > 0 s and finite, got {args.duration!r}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    spec = load_spec(args.model, args.size, args.seed, duration, args.card_source)
    record = parse_record(spec, args.record)
    result = simulate(spec, duration, device=args.device, target=args.target, record=record,
                      threads=args.threads, progress=not args.no_progress)
    write_outputs(result, out, model=args.model, seed=spec.seed, dt_s=spec.dt, record=record,
                  threads=args.threads)
    return 0


def write_outputs(result, out, **facts):
    """Write ``spikes.npz``, ``states.npz``, ``summary.json`` (plus ``facts``) and a raster into ``out``.

    Prints one line per population and the timings.
    """
    from neurocode.figures.activity import raster

    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (idx, times) in result.spikes.items():
        arrays[f"{name}/indices"], arrays[f"{name}/times"] = idx, times
    with atomic_path(out / "spikes.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    states = {"t": result.t}
    for pop, variables in result.states.items():
        for var, values in variables.items():
            states[f"{pop}/{var}"] = values
    with atomic_path(out / "states.npz") as tmp:
        np.savez_compressed(tmp, **states)
    summary = result.summary()
    summary.update(facts, sizes=result.sizes)
    write_json(out / "summary.json", summary)
    png = raster(result, out / "raster")
    for name, pop in summary["populations"].items():
        cv = pop["mean_cv_isi"]
        print(f"{name:>12s}: {pop['n_neurons']:5d} neurons, {pop['spike_count']:7d} spikes, "
              f"{pop['mean_rate_hz']:7.2f} Hz, CV(ISI) {'n/a' if cv is None else f'{cv:.2f}'}")
    t = result.timings
    print(f"{result.device}: build {t.get('build', 0):.2f} s, compile {t.get('compile', 0):.2f} s, "
          f"run {t.get('run', 0):.2f} s")
    print(f"wrote {out / 'spikes.npz'}, {out / 'states.npz'}, {out / 'summary.json'}, {png}")
