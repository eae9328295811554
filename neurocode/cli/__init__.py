"""The ``neurocode`` command. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from neurocode import __version__

#: Subcommand modules under ``neurocode.cli``; each defines ``register(subparsers)``.
COMMANDS = ["models", "simulate", "build", "collect", "doctor", "train", "rank_coding", "validate", "lyapunov", "prune"]


def build_parser():
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="neurocode", description=__doc__)
    parser.add_argument("--version", action="version", version=f"neurocode {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"neurocode.cli.{name}").register(sub)
    return parser


def main(argv=None):
    """Entry point: parse ``argv`` and run the chosen subcommand; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        if args.verbose:
            raise
        print(f"neurocode {args.command}: error: {exc}", file=sys.stderr)
        return 2
