"""Headless command line: ``python -m segmentation.cli train|predict|evaluate|suggest|cells|features``.

Each subcommand lives in ``segmentation/commands/<topic>.py`` and exposes
``register(subparsers)``; this module only assembles them, so two people can work
on two commands without touching the same file.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

_STARTED = time.perf_counter()  # before the commands' imports (torch...): train --minutes counts them

_COMMAND_MODULES = ("training", "cells", "features")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segmentation.cli", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"segmentation.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"segmentation.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, started: float | None = None) -> int:
    """Run one subcommand; ``started`` is the ``time.perf_counter()`` its time budget counts from (default: now)."""
    started = time.perf_counter() if started is None else started
    args = build_parser().parse_args(argv)
    args.started = started
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(started=_STARTED))
