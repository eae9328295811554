"""The ``neurocode`` command. Each subcommand lives in its own module with a ``register``.

Every :class:`~neurocode.errors.NeurocodeError` (a bad card, spec, config, dataset or
option) is printed as one line, ``neurocode: error: ...``, with exit status 2; any other
exception is a bug and keeps its traceback (``-v`` shows the traceback of our errors too).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from neurocode import __version__
from neurocode.errors import NeurocodeError

#: Subcommand modules under ``neurocode.cli``; each defines ``register(subparsers)``.
COMMANDS = ["models", "simulate", "build", "collect", "doctor", "train", "rank_coding", "validate", "lyapunov",
            "prune", "nir"]


def build_parser():
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="neurocode", description=__doc__)
    parser.add_argument("--version", action="version", version=f"neurocode {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"neurocode.cli.{name}").register(sub)
    return parser


#: A negative number, possibly with a unit: ``-5``, ``-5ms``, ``-.5*second``.
_NEGATIVE = re.compile(r"^-(\d|\.\d)")


def attach_negative_values(argv):
    """``["--duration", "-5ms"]`` -> ``["--duration=-5ms"]``, so that argparse does not read ``-5ms``
    as an option; the value is then checked (and refused) by the command itself.

    >>> attach_negative_values(["simulate", "lif", "--duration", "-5ms", "-k", "-3"])
    ['simulate', 'lif', '--duration=-5ms', '-k', '-3']
    """
    out = []
    for token in argv:
        if out and _NEGATIVE.match(token) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv=None):
    """Entry point: parse ``argv`` and run the chosen subcommand; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except NeurocodeError as exc:
        if args.verbose:
            raise
        print("neurocode: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
