#!/usr/bin/env python
"""Run the four report notebooks once per reward target and render them to HTML.

    python run_all.py [--data PATH] [--targets T ...] [--out DIR] [-p NAME=VALUE ...] [--jobs N]
                      [--force] [--scheduler ADDRESS]

Each target gets <out>/<target>/NN_name.ipynb and .html, contributions.parquet and summary.json;
<out>/index.html links them all. Unchanged notebooks (same parameters, data and library code) are
skipped unless --force. Exit status: 0 when every target succeeded, 1 when any failed, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import sys

from fandom_lib.pipeline import ParameterError, check_run_parameters, declared_parameters, parse_parameters, run_all
from fandom_lib.schema import TARGETS


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, check them all before running anything, run, report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="", help="table to analyse (.pkl/.pickle/.parquet/.csv, optionally "
                    "compressed); default: the synthetic default data")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), metavar="T",
                    help="reward targets (default: all five)")
    ap.add_argument("--out", default="reports", help="output folder (default: reports)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="notebook parameter, e.g. -p epochs=10 -p rows=20000 (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="targets to run in parallel (default 1)")
    ap.add_argument("--force", action="store_true", help="rerun notebooks even when nothing changed")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="Dask distributed scheduler address (e.g. tcp://host:8786) to run the targets on")
    args = ap.parse_args(argv)
    try:
        if args.jobs < 1:
            raise ParameterError(f"--jobs {args.jobs}: must be at least 1")
        params = parse_parameters(args.param, declared_parameters())
        if args.data:
            params["data_path"] = args.data
        targets = check_run_parameters(args.targets, params)
    except ParameterError as e:
        print(f"run_all.py: error: {e}", file=sys.stderr)
        return 2
    outcomes = run_all(targets, args.out, params, args.jobs, args.force, args.scheduler)
    failed = [o for o in outcomes if o.status != "ok"]
    for o in outcomes:
        what = ", ".join(f"{k[:2]} {v}" for k, v in o.notebooks.items())
        print(f"{o.target}: {o.status} in {o.seconds:.0f} s ({what}){'  ' + o.error if o.error else ''}")
    print(f"index: {args.out}/index.html")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
