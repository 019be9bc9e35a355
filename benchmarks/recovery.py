"""Recovery benchmark: does each method find the true per-fan contributions on synthetic tables?

For each synthetic table (the embedded default and variants of it) and each method, prints per action
the correlation between estimated and true per-row contributions, and whether the sign of the action's
mean contribution is right (for an action without effect: whether its mean is near zero, within 5% of
the largest true mean, as in the reports). Methods:

  default         this project's default: LSTM trained on random orders with the step-0 state, credit
                  averaged over 8 orders (antithetic pairs) of the counterfactual path
  fixed order     the same model, credit from the one fixed reference order (saves first ... programmed
                  streams last)
  reference recipe  the reference notebook's recipe rebuilt: target zero at steps 1..7, no state, one
                  output head, fixed order; credit from differences of its own predictions along the
                  sequence, the first action credited with everything predicted up to it (no baseline)
  additive model  least squares of the return on the state and, per action, log1p(count) and did-it
                  (fandom_lib.crosscheck.additive_model)

Usage (from the project folder):
    .venv/bin/python benchmarks/recovery.py                 # 50,000 rows, 30 epochs: a few minutes
    .venv/bin/python benchmarks/recovery.py --quick         # 10,000 rows, 8 epochs: a smoke test
    .venv/bin/python benchmarks/recovery.py --rows 20000 --epochs 15 --tables default zero_effect
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from fandom_lib.analysis import truth_recovery
from fandom_lib.crosscheck import additive_model
from fandom_lib.redistribution import quality_gate, redistribute
from fandom_lib.schema import ACTIONS, DEFAULT_TARGET, canonical_target
from fandom_lib.sequences import table_to_arrays
from fandom_lib.synthetic import SyntheticSpec, generate, true_contributions
from fandom_lib.training import TrainConfig, reference_recipe_config, train_return_model

SHORT = dict(zip(ACTIONS, ("saves", "follows", "playlists", "tickets", "merch", "shares", "active", "programmed")))
METHODS = ("default", "fixed order", "reference recipe", "additive model")


def tables(target: str) -> dict[str, tuple[str, SyntheticSpec]]:
    """The synthetic tables: name -> (what is special about it, its spec)."""
    base = SyntheticSpec()
    return {
        "default": ("the embedded default (shares has no effect, programmed streams a negative one)", base),
        "correlated": ("strongly correlated actions (engagement drives 95% of each rate)",
                       replace(base, action_correlation=0.95)),
        "confounded": ("strongly confounded: the pre-period carries three times as much into the outcome",
                       replace(base, confounding=3.0)),
        "zero_effect": ("playlist adds (a fifth of fans, correlated with everything) have no effect",
                        base.with_effect(target, ACTIONS[2], 0.0)),
        "negative": ("follows have a strong negative effect (-3 per follow)",
                     base.with_effect(target, ACTIONS[1], -3.0)),
    }


def score(estimate: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per action: correlation with the truth and whether the mean's sign is right (near zero for no effect)."""
    table = truth_recovery(estimate, truth)
    return table[["correlation", "sign right", "mean (this estimate)", "mean (truth)"]]


def run_table(name: str, spec: SyntheticSpec, target: str, args: argparse.Namespace) -> list[dict]:
    """Train both models on one table and score every method; one record per method."""
    df = generate(args.rows, args.seed, spec)
    truth = true_contributions(df, target, spec)
    arrays = table_to_arrays(df, target)
    records = []
    t0 = time.perf_counter()
    model = train_return_model(arrays, TrainConfig(epochs=args.epochs, seed=args.seed))
    held = model.val_rows
    estimates = {
        "default": redistribute(model, arrays, "averaged", args.orders, args.seed),
        "fixed order": redistribute(model, arrays, "reference", 1, args.seed),
    }
    t1 = time.perf_counter()
    recipe = train_return_model(arrays, reference_recipe_config(epochs=args.epochs, seed=args.seed))
    estimates["reference recipe"] = redistribute(recipe, arrays, "reference_recipe")
    t2 = time.perf_counter()
    additive, additive_pred = additive_model(arrays, model.train_rows)
    seconds = {"default": t1 - t0, "fixed order": t1 - t0, "reference recipe": t2 - t1, "additive model": 0.0}
    for method in METHODS:
        if method == "additive model":
            estimate, prediction = additive, additive_pred
        else:
            estimate, prediction = estimates[method], estimates[method]["prediction"].to_numpy()
        s = score(estimate, truth)
        effect = s["mean (truth)"].abs() > 1e-12
        records.append(
            {
                "table": name,
                "method": method,
                **{SHORT[a]: s.loc[a, "correlation"] for a in ACTIONS},
                **{f"{SHORT[a]} sign": bool(s.loc[a, "sign right"]) for a in ACTIONS},
                "min corr": s.loc[effect, "correlation"].min(),
                "signs right": int(s["sign right"].sum()),
                "rse": quality_gate(arrays.returns[held], prediction[held])["rse"],
                "seconds": seconds[method],
            }
        )
    return records


def format_table(records: list[dict]) -> str:
    """Per table and method: correlation per action, a mark for a wrong mean sign, and summaries."""
    lines = []
    names = [SHORT[a] for a in ACTIONS]
    head = f"{'table':12s} {'method':17s} " + " ".join(f"{n[:7]:>8s}" for n in names)
    head += f" {'min corr':>8s} {'signs':>6s} {'RSE':>6s}"
    lines.append(head)
    lines.append("-" * len(head))
    last = None
    for r in records:
        if last is not None and r["table"] != last:
            lines.append("")
        cells = []
        for n in names:
            c = r[n]
            mark = "" if r[f"{n} sign"] else "!"
            cells.append(f"{('  -  ' if np.isnan(c) else f'{c:.3f}') + mark:>8s}")
        lines.append(
            f"{r['table'] if r['table'] != last else '':12s} {r['method']:17s} " + " ".join(cells)
            + f" {r['min corr']:8.3f} {r['signs right']:>4d}/8 {r['rse']:6.3f}"
        )
        last = r["table"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows per synthetic table (default 50,000)")
    parser.add_argument("--epochs", type=int, default=30, help="most training epochs per model (default 30)")
    parser.add_argument("--orders", type=int, default=8, help="orders averaged by the default method (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the tables and the training (default 0)")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="reward target (default active streams)")
    parser.add_argument("--tables", nargs="*", default=None, help="which tables (default all): "
                        "default correlated confounded zero_effect negative")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 8 epochs, 4 orders: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.orders = min(args.rows, 10_000), min(args.epochs, 8), min(args.orders, 4)
    target = canonical_target(args.target)
    available = tables(target)
    chosen = args.tables or list(available)
    unknown = [t for t in chosen if t not in available]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    print("$ " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), flush=True)
    print(f"target {target}; {args.rows:,} rows per table; at most {args.epochs} epochs; seed {args.seed}")
    print("cells: per-row correlation with the true contribution ('-' where the truth is zero for every")
    print("row); '!' marks a mean contribution with the wrong sign (or, without effect, not near zero).")
    print("min corr: lowest correlation over the actions with an effect; signs: actions whose mean is right;")
    print("RSE: relative squared error of the return prediction on the held-out rows.\n")
    start = time.perf_counter()
    records = []
    for name in chosen:
        what, spec = available[name]
        t = time.perf_counter()
        records += run_table(name, spec, target, args)
        print(f"  {name}: {what} ({time.perf_counter() - t:.0f} s)", flush=True)
    print()
    print(format_table(records))
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
