"""``neurocode collect``: read what a built project's binary wrote (``neurocode build``, ``sh run.sh``)."""

from __future__ import annotations

from pathlib import Path


def register(sub):
    parser = sub.add_parser(
        "collect", help="read the results of a project built with 'neurocode build' and run with run.sh",
        description="Read the spikes and states that a project's binary wrote into DIR/results and write "
                    "spikes.npz, states.npz, summary.json and a raster figure (PNG + CSV) into --out, as "
                    "'neurocode simulate' does.")
    parser.add_argument("directory", metavar="DIR", help="project folder")
    parser.add_argument("--out", default=None, help="output folder (default: DIR/collected)")
    parser.set_defaults(func=run)


def run(args):
    from neurocode.brian.project import collect_project
    from neurocode.cli.simulate import write_outputs

    directory = Path(args.directory)
    result = collect_project(directory)
    write_outputs(result, Path(args.out) if args.out else directory / "collected", project=str(directory.resolve()))
    return 0
