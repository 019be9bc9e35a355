#!/usr/bin/env python
"""Run the four report notebooks (data preparation, training, sample fans, contribution analysis) for
each reward target with papermill, render them to HTML and write <out>/index.html linking them all.

    python run_all.py [--data PATH] [--targets T ...] [--out DIR] [-p NAME=VALUE ...] [--jobs N]
                      [--force] [--scheduler ADDRESS]

Everything is checked before anything runs. Exit status: 0 when every target succeeded, 1 when any
failed, 2 for bad arguments (nothing ran), 130 when interrupted (Ctrl-C; 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap

from fandom_lib.pipeline import (
    NOTEBOOKS,
    ParameterError,
    check_out_dir,
    check_run_parameters,
    check_scheduler_reachable,
    declared_parameters,
    parameter_help,
    parse_parameters,
    run_all,
)
from fandom_lib.schema import TARGETS

DESCRIPTION = """\
Run the four report notebooks (data preparation, training, sample fans, contribution analysis) for
each reward target and render them to HTML; <out>/index.html links every report with its status."""

EPILOG = """\
targets (--targets, default all five; the short form without _following_four_weeks also works):
  {targets}

notebook parameters (-p NAME=VALUE, repeatable; each checked against the notebooks' parameters cell):
{parameters}

outputs, per target in <out>/<target>/:
  {notebooks} (.ipynb and .html),
  contributions.parquet and summary.json. A notebook that raises fails its target (its .html shows the
  error) and the other targets go on. Files are written under temporary names (.*.part*) and moved into
  place when complete.

reruns:
  A notebook is skipped when its parameters, the data file and the library code are unchanged since its
  last successful run (--force reruns it). After Ctrl-C or a kill, run the same command again: it picks
  up after the last notebook that finished. Nothing else in --out is touched.

exit status:
  0 every target succeeded; 1 a target failed; 2 bad arguments (nothing ran); 130 interrupted (Ctrl-C).

examples:
  python run_all.py
  python run_all.py --data table.pickle --targets merch shares -p epochs=10 -p rows=20000
  python run_all.py --jobs 2 --out reports_seed1 -p seed=1
  python run_all.py --scheduler tcp://scheduler-host:8786 --out /shared/reports"""


class HelpParser(argparse.ArgumentParser):
    """Fills the help's list of notebook parameters only when help is shown (reading them takes a moment)."""

    def format_help(self) -> str:
        try:
            parameters = parameter_help(declared_parameters())
        except Exception as e:  # help must show even if a notebook cannot be read
            parameters = f"  (could not read the notebooks' parameters: {e})"
        self.epilog = EPILOG.format(
            targets="\n  ".join(textwrap.wrap(", ".join(TARGETS), 100)),
            parameters=parameters,
            notebooks=", ".join(NOTEBOOKS),
        )
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    ap = HelpParser(prog="run_all.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="", metavar="PATH",
                    help="table to analyse: .pkl/.pickle, .parquet or .csv, optionally .gz/.bz2/.zip/.xz "
                    "(default: the built-in synthetic data)")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), metavar="T",
                    help="reward targets to report on (default: all five, listed below)")
    ap.add_argument("--out", default="reports", metavar="DIR", help="output folder (default: reports)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="notebook parameter, e.g. -p epochs=10 -p rows=20000 (repeatable; listed below)")
    ap.add_argument("--jobs", type=int, default=usable_cores(), metavar="N",
                    help=f"targets to run at once on this machine, sharing its cores (default: the {usable_cores()} "
                    "cores this process may use; results are the same for any N)")
    ap.add_argument("--force", action="store_true", help="rerun every notebook even when nothing changed")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the targets on a Dask distributed cluster, e.g. tcp://host:8786 (its workers "
                    "need this project installed and --out and --data on a shared file system; --jobs is "
                    "then ignored)")
    return ap


def usable_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, check them all before running anything, run, report; return the exit status."""
    args = build_parser().parse_args(argv)
    stopped_by: list[int] = []

    def on_term(signum, frame):  # SIGTERM stops as cleanly as Ctrl-C
        stopped_by.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        try:
            if args.jobs < 1:
                raise ParameterError(f"--jobs {args.jobs}: must be at least 1")
            params = parse_parameters(args.param, declared_parameters())
            if args.data:
                if params.get("data_path", args.data) != args.data:
                    raise ParameterError("--data and -p data_path name different files; give one of them")
                params["data_path"] = args.data
            targets = check_run_parameters(args.targets, params)
            if args.scheduler:
                check_scheduler_reachable(args.scheduler)
            out = check_out_dir(args.out)
            outcomes = run_all(targets, out, params, args.jobs, args.force, args.scheduler)
        except ParameterError as e:
            print(f"run_all.py: error: {e}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("\nrun_all.py: interrupted before any target ran", file=sys.stderr)
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for o in outcomes:
        what = ", ".join(f"{k[:2]} {v}" for k, v in o.notebooks.items())
        line = f"{o.target}: {o.status} in {o.seconds:.0f} s ({what})"
        if o.error:
            failed = next((n for n, v in o.notebooks.items() if v == "failed"), None)
            line += f"\n    {o.error}" + (f"\n    see {out / o.target / (failed + '.html')}" if failed else "")
        print(line)
    print(f"index: {out / 'index.html'}")
    interrupted = [o.target for o in outcomes if o.status == "interrupted"]
    if interrupted:
        print(f"run_all.py: interrupted; not finished: {', '.join(interrupted)}. Run the same command again "
              "to pick up where it stopped (finished notebooks are skipped).", file=sys.stderr)
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    return 1 if any(o.status != "ok" for o in outcomes) else 0


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
