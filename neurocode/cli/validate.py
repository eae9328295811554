"""``neurocode validate``: run a trained network's test set in Brian2 and compare with torch."""

from __future__ import annotations

import logging

from neurocode.cards.stale import CARD_SOURCES
from neurocode.errors import ConfigError
from neurocode.units import parse_time

logger = logging.getLogger(__name__)


def register(sub):
    parser = sub.add_parser(
        "validate", help="validate a trained network (run folder) in Brian2 against torch",
        description="Present test samples to the trained NetworkSpec of RUN_DIR in Brian2 (one compilation, "
                    "trials concatenated in time with a state reset at each trial start), decode the first "
                    "output spike, and compare with the torch engine: accuracy, agreement, spike-time error, "
                    "spikes per neuron. Writes validation-<device>[-<variants>].json into RUN_DIR or --out.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding network.npz (or the .npz itself)")
    parser.add_argument("--device", default="cpp_standalone", choices=["cpp_standalone", "runtime", "cuda_standalone"])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[=STRENGTH]",
                        help="detailed-dynamics variant (repeatable): leak, conductance, delays, noise, "
                             "heterogeneity, quantize, dt")
    parser.add_argument("--samples", type=int, default=None, help="first N test samples (default: all)")
    parser.add_argument("--dt", default=None, help="Brian2 time step, e.g. '0.01*ms' (default: the spec's)")
    parser.add_argument("--data", default=None, help="dataset name (default: the run's config)")
    parser.add_argument("--root", default=None, help="dataset folder (IDX files); needs --data")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR)")
    parser.add_argument("--overwrite", action="store_true", help="replace a report of the same settings")
    parser.add_argument("--card-source", choices=CARD_SOURCES, default="stored",
                        help="a card whose file changed since training: validate the card text stored in the "
                             "spec, or the file as it is now (default: %(default)s)")
    parser.add_argument("--chunk", type=int, default=500, help="trials per compiled run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for cpp_standalone")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="Dask scheduler: each chunk of samples is one task on its workers (docs/cluster.md)")
    parser.add_argument("--timing", default="auto", choices=["auto", "interpolated", "grid"],
                        help="TTFS spike times: interpolated within the step where the cards allow it (auto, "
                             "the default), always (error where they do not), or on the time grid")
    parser.add_argument("--seed", type=int, default=0, help="seed of random variants (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress")
    parser.set_defaults(func=run)


def format_report(report):
    """The report as a printed table."""
    lines = [f"{report['kind']} network on {report['device']}, {report['n_samples']} samples, "
             f"dt = {report['dt'] * 1e3:g} ms, spike times {report.get('timing', 'grid')}, "
             f"variants: {report['variants'] or 'none'}"]
    if report.get("compiled_only"):
        return "\n".join(lines + ["compiled only (no GPU here): run the same command on a GPU machine"])
    lines += [f"accuracy  brian2 {100 * report['accuracy_brian2']:.2f} %   torch {100 * report['accuracy_torch']:.2f} %"
              f"   agreement {100 * report['agreement']:.2f} %",
              f"{'layer':<10}{'size':>6}{'RMSE (ms)':>11}{'RMSE/dt':>9}{'<=dt':>8}{'mismatch':>10}"
              f"{'spk/n b2':>10}{'spk/n torch':>12}"]
    for name, layer in report["layers"].items():
        e = layer["spike_time"]
        lines.append(f"{name:<10}{layer['size']:>6}{e['rmse'] * 1e3:>11.4f}{e['rmse_dt']:>9.3f}"
                     f"{e['within_dt']:>8.3f}{e['fired_mismatch']:>10.4f}"
                     f"{layer['spikes_per_neuron_brian2']:>10.3f}{layer['spikes_per_neuron_torch']:>12.3f}")
    t = report["timings_s"]
    lines.append(f"time: build {t['build']:.1f} s, compile {t['compile']:.1f} s, run {t['run']:.1f} s, "
                 f"torch {t['torch']:.1f} s")
    return "\n".join(lines)


def run(args):
    from neurocode.brian.devices import gpu_present
    from neurocode.validate.run import validate_run

    logging.getLogger("brian2").setLevel(logging.WARNING)
    if args.root is not None and args.data is None:
        raise ConfigError("--root names the dataset folder of --data; give --data too (e.g. --data mnist)")
    for option in ("samples", "chunk", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ConfigError(f"--{option} must be >= 1, got {value}")
    compile_only = args.device == "cuda_standalone" and not gpu_present()
    if compile_only:
        print("cuda_standalone: no CUDA GPU here; generating and compiling the project only "
              "(run the same command on a GPU machine to validate)")
    dt = parse_time(args.dt, "--dt", bare="ms") if args.dt else None
    report, path = validate_run(args.run_dir, device=args.device, variants=args.variant, samples=args.samples,
                                dt=dt, out=args.out, data=args.data,
                                root=args.root, chunk=args.chunk, threads=args.threads,
                                progress=not args.no_progress, seed=args.seed, compile_only=compile_only,
                                timing=args.timing, card_source=args.card_source, overwrite=args.overwrite,
                                scheduler=args.scheduler)
    print(format_report(report))
    print(f"wrote {path}")
    return 0
