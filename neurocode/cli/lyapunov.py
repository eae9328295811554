"""``neurocode lyapunov SPEC_OR_CARD``: Lyapunov spectrum (1/s) of a network or one card."""

from pathlib import Path


def register(sub):
    parser = sub.add_parser("lyapunov", help="Lyapunov spectrum of a NetworkSpec (.npz) or a model card",
                            description="Benettin/QR Lyapunov spectrum, exponents in 1/s.")
    parser.add_argument("target", help="NetworkSpec file (.npz, one population 'hrsnn' with a 'recurrent' "
                                       "projection, or any single population) or a card name/path")
    parser.add_argument("-k", type=int, default=None, help="number of exponents (default all)")
    parser.add_argument("-n", "--neurons", type=int, default=1, help="neurons of a card (default 1)")
    parser.add_argument("--dt", type=float, default=None, help="time step in s (default: spec's, or 1e-4; "
                                                               "1e-2 for rate cards)")
    parser.add_argument("--t-sim", type=float, default=100.0,
                        help="averaging time in s; with --rtol > 0 (the default) the cap on it (default 100)")
    parser.add_argument("--rtol", type=float, default=0.02,
                        help="run in blocks until every exponent's drift over the last block and standard error "
                             "are at most max(atol, rtol*|exponent|) (default 0.02); 0 runs exactly --t-sim")
    parser.add_argument("--atol", type=float, default=None,
                        help="absolute tolerance in 1/s (default rtol*|largest exponent|)")
    parser.add_argument("--t-block", type=float, default=1.0, help="averaging time per convergence block in s")
    parser.add_argument("--t-transient", type=float, default=0.1, help="discarded transient in s")
    parser.add_argument("--t-relax", type=float, default=0.0,
                        help="time in s run first with the plain map, to spread the initial conditions over "
                             "the attractor (cheap; see docs/lyapunov.md)")
    parser.add_argument("--batch", type=int, default=16,
                        help="independent initial conditions (default 16; they give the standard errors)")
    parser.add_argument("--qr-every", type=int, default=1)
    parser.add_argument("--treatment", choices=["exact", "surrogate", "discrete"], default="exact",
                        help="spike treatment (ignored for rate cards)")
    parser.add_argument("--drive-rate", type=float, default=0.0, help="frozen Poisson drive per neuron (Hz)")
    parser.add_argument("--drive-weight", type=float, default=None, help="drive weight (SI, card's weight unit)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", help="write the result as JSON here")
    parser.add_argument("--figure", help="draw the spectrum with error bars here (PNG + CSV)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(func=run)


def check_args(args):
    """Refuse impossible options before any work (times > 0, counts >= 1, an existing --output)."""
    from neurocode.errors import ConfigError
    from neurocode.io import check_output_file
    for option in ("dt", "t_sim"):
        value = getattr(args, option)
        if value is not None and not 0 < value < float("inf"):
            raise ConfigError(f"--{option.replace('_', '-')} must be > 0 s and finite, got {value}")
    for option in ("t_transient", "t_relax", "drive_rate"):
        value = getattr(args, option)
        if not 0 <= value < float("inf"):
            raise ConfigError(f"--{option.replace('_', '-')} must be >= 0 and finite, got {value}")
    for option in ("neurons", "batch", "qr_every"):
        if getattr(args, option) < 1:
            raise ConfigError(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    if args.k is not None and args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    if args.output:
        check_output_file(args.output, args.overwrite)


def build_map(args):
    """A :class:`SpikingMap` for a spec file or a card."""
    import numpy as np
    from neurocode.errors import ConfigError
    from neurocode.lyapunov.spiking import SpikingMap
    from neurocode.cards import load_card
    from neurocode.spec import NetworkSpec
    drive = None
    if str(args.target).endswith(".npz"):
        spec = NetworkSpec.load(args.target)
        if len(spec.populations) != 1:
            raise ConfigError(f"{args.target}: the spectrum needs one recurrent population, got "
                             f"{sorted(spec.populations)}")
        pop = next(iter(spec.populations.values()))
        recurrent = [p for p in spec.projections if p.source == pop.name and p.target == pop.name]
        W = sum(p.dense((pop.size, pop.size)) for p in recurrent) if recurrent else None
        if args.drive_rate > 0:
            w = args.drive_weight if args.drive_weight is not None else 2 * np.abs(W[W > 0]).mean()
            drive = {"rate": args.drive_rate, "weight": w, "seed": args.seed}
        return SpikingMap(pop.card, pop.params, dt=args.dt or spec.dt, weights=W, drive=drive,
                          device=args.device)
    card = load_card(args.target)
    dt = args.dt or (1e-2 if card.kind == "rate" else 1e-4)
    if args.drive_rate > 0:
        if args.drive_weight is None:
            raise ConfigError("--drive-rate on a card needs --drive-weight (SI, the card's weight unit)")
        drive = {"rate": args.drive_rate, "weight": args.drive_weight, "seed": args.seed}
    return SpikingMap(card, n=args.neurons, dt=dt, drive=drive, device=args.device)


def run(args):
    from neurocode.io import write_json
    from neurocode.lyapunov import Convergence
    from neurocode.lyapunov.spiking import spiking_spectrum
    check_args(args)
    net = build_map(args)
    converge = Convergence(args.rtol, args.atol, args.t_block) if args.rtol > 0 or args.atol else None
    res = spiking_spectrum(net, batch=args.batch, k=args.k, t_sim=args.t_sim, t_transient=args.t_transient,
                           t_relax=args.t_relax, treatment=args.treatment, qr_every=args.qr_every, seed=args.seed,
                           progress=True, converge=converge)
    print(res.summary())
    if args.output:
        write_json(Path(args.output), res.to_dict())
        print(f"wrote {args.output}")
    if args.figure:
        from neurocode.figures.lyapunov import spectrum_errorbars
        print(f"wrote {spectrum_errorbars(res, args.figure)}")
    return 0
