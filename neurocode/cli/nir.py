"""``neurocode nir export|import``: NetworkSpec <-> NIR graph files (the ``nir`` extra)."""


def register(sub):
    parser = sub.add_parser("nir", help="export a NetworkSpec to NIR, or import a NIR graph",
                            description="Neuromorphic Intermediate Representation in and out (docs/nir.md).")
    actions = parser.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="NetworkSpec (.npz) -> NIR graph (.nir)")
    export.add_argument("spec", help="NetworkSpec file (.npz)")
    export.add_argument("out", help="NIR file to write (.nir, HDF5)")
    export.set_defaults(func=run_export)
    imp = actions.add_parser("import", help="NIR graph (.nir) -> NetworkSpec (.npz)")
    imp.add_argument("graph", help="NIR file (.nir)")
    imp.add_argument("out", help="NetworkSpec file to write (.npz)")
    imp.add_argument("--dt", type=float, default=None,
                     help="time step in s the graph was exported for (snnTorch: 1e-4); default: the graph's "
                          "metadata")
    imp.set_defaults(func=run_import)


def run_export(args):
    from neurocode.interop import write_nir
    from neurocode.spec import NetworkSpec
    write_nir(NetworkSpec.load(args.spec), args.out)
    print(f"wrote {args.out}")
    return 0


def run_import(args):
    from neurocode.interop import from_nir
    spec = from_nir(args.graph, dt=args.dt)
    spec.save(args.out)
    sizes = ", ".join(f"{p.name} ({p.card.name}, {p.size})" for p in spec.populations.values())
    print(f"wrote {args.out}: populations {sizes}; {len(spec.projections)} projection(s)")
    return 0
