"""``neurocode prune SPEC``: LNP, random or activity pruning; writes a pruned NetworkSpec."""

from pathlib import Path


def register(sub):
    parser = sub.add_parser("prune", help="prune a recurrent NetworkSpec (LNP, random, activity)",
                            description="Prune the 'recurrent' projection of population 'hrsnn'.")
    parser.add_argument("spec", help="NetworkSpec file (.npz)")
    parser.add_argument("--method", choices=["lnp", "random", "activity"], default="lnp")
    parser.add_argument("--keep", type=float, required=True,
                        help="fraction of synapses kept (0-1), e.g. 0.1 for 90 %% synapse sparsity")
    parser.add_argument("--keep-neurons", type=float, default=0.7, help="fraction of neurons kept (0-1)")
    parser.add_argument("--rates", help="for --method activity: .npy file of per-neuron rates (Hz) of the "
                                        "dense network on the task")
    parser.add_argument("--no-timescales", action="store_true", help="LNP: skip step 5 (timescale search)")
    parser.add_argument("--treatment", choices=["exact", "surrogate"], default="exact",
                        help="LNP: spike treatment of steps 1 and 5 (surrogate: cheaper approximation, see "
                             "docs/lyapunov.md)")
    parser.add_argument("--rescale", choices=["radius", "none", "inverse-p"], default="radius",
                        help="weights of the pruned network, for every method: 'radius' (one gain restoring the "
                             "dense spectral radius), 'none' (original weights) or, LNP only, 'inverse-p' (kept "
                             "weights divided by their keep probability); default %(default)s")
    parser.add_argument("--ei", choices=["mixed", "separate"], default="mixed",
                        help="excitatory and inhibitory neurons and synapses ranked together ('mixed') or each "
                             "class on its own at its dense share ('separate'), for every method; "
                             "default %(default)s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True, help="pruned NetworkSpec (.npz)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(func=run)


def load_rates(path):
    """Per-neuron rates (Hz) from a ``.npy`` file: finite and >= 0, read without pickles."""
    import numpy as np
    from neurocode.checks import check_values
    from neurocode.errors import ConfigError
    try:
        rates = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"--rates {path}: not a readable .npy array ({exc})") from None
    return check_values(rates, f"--rates {path}", low=0.0, inclusive=True, unit="Hz", error=ConfigError)


def run(args):
    from neurocode.errors import ConfigError
    from neurocode.io import check_output_file, write_json
    from neurocode.lyapunov.prune import activity_prune, lnp_prune, random_prune
    from neurocode.spec import NetworkSpec
    if args.rescale == "inverse-p" and args.method != "lnp":
        raise ConfigError("--rescale inverse-p needs keep probabilities: it applies to --method lnp only")
    if not 0 < args.keep <= 1 or not 0 < args.keep_neurons <= 1:
        raise ConfigError(f"--keep and --keep-neurons must lie in (0, 1], got {args.keep}, {args.keep_neurons}")
    if args.method == "activity" and not args.rates:
        raise ConfigError("--method activity needs --rates (per-neuron rates of the dense network, .npy)")
    check_output_file(args.output, args.overwrite)
    if args.method == "lnp":
        check_output_file(Path(args.output).with_suffix(".json"), args.overwrite)
    spec = NetworkSpec.load(args.spec)
    n = spec.populations["hrsnn"].size if "hrsnn" in spec.populations else 0
    n_syn = spec.projection("recurrent").i.size if spec.projections else 0
    keep_syn, keep_n = int(round(args.keep * n_syn)), max(1, int(round(args.keep_neurons * n)))
    if args.method == "lnp":
        out, info = lnp_prune(spec, keep_syn, keep_n, optimise=not args.no_timescales, seed=args.seed,
                              treatment=args.treatment, rescale=args.rescale, ei=args.ei)
        write_json(Path(args.output).with_suffix(".json"), info)
    elif args.method == "random":
        out = random_prune(spec, keep_n, keep_syn, seed=args.seed, rescale=args.rescale, ei=args.ei)
    else:
        out = activity_prune(spec, keep_n, keep_syn, load_rates(args.rates), rescale=args.rescale, ei=args.ei)
    out.save(args.output)
    print(f"{args.method}: {out.populations['hrsnn'].size}/{n} neurons, "
          f"{out.projection('recurrent').i.size}/{n_syn} synapses -> {args.output}")
    return 0
