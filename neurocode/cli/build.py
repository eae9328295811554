"""``neurocode build``: compile a standalone project here, to run it elsewhere (``neurocode collect``)."""

from __future__ import annotations

import logging
from pathlib import Path

from neurocode.cli.simulate import SEED, SIZE
from neurocode.errors import ConfigError
from neurocode.units import parse_time


def register(sub):
    parser = sub.add_parser(
        "build", help="generate and compile a standalone project to run elsewhere",
        description="Generate and compile a cpp_standalone or cuda_standalone project for a card's default "
                    "network or a NetworkSpec (.npz) into --out, without running it (CUDA compiles without a "
                    "GPU). Copy the folder anywhere, run 'sh run.sh' there, then 'neurocode collect DIR'. "
                    "With --data-only, an existing project gets a new spec's inputs, weights and parameters "
                    "(same structure) without recompiling.")
    parser.add_argument("model", metavar="CARD_OR_SPEC")
    parser.add_argument("--device", default="cpp_standalone", choices=["cpp_standalone", "cuda_standalone"])
    parser.add_argument("--out", required=True, help="project folder")
    parser.add_argument("--duration", default="1*second",
                        help="simulated time, seconds or a Brian2 quantity like '500*ms' (default: %(default)s)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"neurons in a card's default network (default: {SIZE})")
    parser.add_argument("--seed", type=int, default=None, help=f"seed of a card's default network (default: {SEED})")
    parser.add_argument("--record", default="", help="comma-separated state variables to record, e.g. v,I_syn")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for cpp_standalone")
    parser.add_argument("--no-bundle", action="store_true",
                        help="cuda_standalone: do not copy libcurand into the project (the target has it)")
    parser.add_argument("--data-only", action="store_true",
                        help="give the existing project in --out this spec's data; no recompilation")
    parser.set_defaults(func=run)


def run(args):
    from neurocode.brian.project import build_project, read_manifest, set_run_data
    from neurocode.cli.simulate import load_spec, parse_record

    logging.getLogger("brian2").setLevel(logging.WARNING)
    out = Path(args.out)
    if args.data_only:
        duration = read_manifest(out)["duration"]
        spec = load_spec(args.model, args.size, args.seed, duration)
        run_args = set_run_data(out, spec)
        print(f"{out}: {len(run_args)} arrays of new data for the next 'sh {out / 'run.sh'}'")
        return 0
    duration = parse_time(args.duration, "--duration")
    if not 0 < duration < float("inf"):
        raise ConfigError(f"--duration must be > 0 s and finite, got {args.duration!r}")
    spec = load_spec(args.model, args.size, args.seed, duration)
    build_project(spec, args.device, out, duration, record=parse_record(spec, args.record), threads=args.threads,
                  bundle_libraries=not args.no_bundle)
    print(f"built {args.device} project in {out}; run it there with: sh {out / 'run.sh'}; "
          f"then: neurocode collect {out}")
    return 0
