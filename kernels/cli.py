"""Command line: ``precision-bench`` (also ``python -m kernels``)."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .codecs import REGISTRY


def _dtypes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dtype registry")
    for col in ("name", "bytes", "kind", "largest finite", "compute dtype"):
        table.add_column(col)
    for row in REGISTRY.values():
        table.add_row(
            row.name,
            str(row.itemsize),
            "integer" if row.is_integer else "float",
            f"{row.max:g}",
            "yes" if row.can_compute else "no",
        )
    Console().print(table)
    return 0


def _speed(args) -> int:
    from .speed import main as speed_main

    if args.sweep:
        from .speed import sweep_apply

        sweep_apply(n=args.n, repeat=min(args.repeat, 5))
    else:
        speed_main(n=args.n, repeat=args.repeat, cases=args.case or None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="precision-bench",
        description="How many distinct values survive a dtype transform, how wrong, how fast.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("dtypes", help="list the supported dtypes")
    p.set_defaults(func=_dtypes)
    p = sub.add_parser(
        "speed",
        help="time the kernels against numpy and the memory roofline, side by side in one process",
    )
    p.add_argument("--n", type=int, default=50_000_000, help="elements per array (default 5e7)")
    p.add_argument("--repeat", type=int, default=7, help="interleaved repeats; the best is kept (default 7)")
    p.add_argument("--case", action="append", help="run only this case (repeatable)")
    p.add_argument(
        "--sweep", action="store_true", help="roofline fraction of every apply-kernel variant (about 2 minutes)"
    )
    p.set_defaults(func=_speed)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "n", 1) <= 0 or getattr(args, "repeat", 1) <= 0:
        parser.error("--n and --repeat must be positive")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
