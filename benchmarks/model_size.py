"""Right-sizing the model: recovery of the known truth and time to convergence against LSTM size.

On the embedded default (50,000 rows, target active streams), trains the LSTM at each size with the
default settings and early stopping, and prints per size: the lowest per-fan correlation with the
true contributions over the actions with an effect, how many of the eight mean contributions have
the right sign, the held-out relative squared error, epochs to the best held-out fit, training
seconds, and redistribution seconds. The smallest size that keeps recovery is the default.

    .venv/bin/python benchmarks/model_size.py                  # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/model_size.py --sizes 1x16 1x32 --rows 20000
    .venv/bin/python benchmarks/model_size.py --sizes 1x8 1x16 1x32 --seeds 0 1 2   # robustness
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from recovery import score  # benchmarks/recovery.py, beside this file

from fandom_lib.redistribution import quality_gate, redistribute
from fandom_lib.schema import DEFAULT_TARGET
from fandom_lib.sequences import table_to_arrays
from fandom_lib.steps import SYNTHETIC_DEFAULT_ROWS
from fandom_lib.synthetic import generate, true_contributions
from fandom_lib.training import TrainConfig, train_return_model


def parse_size(text: str) -> tuple[int, int]:
    """'2x64' -> (2 layers, 64 units)."""
    layers, hidden = text.lower().split("x")
    return int(layers), int(hidden)


def main(argv: list[str] | None = None) -> int:
    """Train at each size and print the recovery and timing table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1x8", "1x16", "1x32", "1x64", "2x64"],
                    help="LAYERSxUNITS sizes to try (default: 1x8 1x16 1x32 1x64 2x64)")
    ap.add_argument("--rows", type=int, default=SYNTHETIC_DEFAULT_ROWS, help="synthetic rows")
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="most epochs (early stopping)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="data and training seeds (default: 0)")
    ap.add_argument("--batch-size", type=int, default=TrainConfig().batch_size, help="rows per optimiser step")
    ap.add_argument("--targets", nargs="+", default=[DEFAULT_TARGET], help="reward targets (default: active streams)")
    args = ap.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"{'target':>28} {'seed':>4} {'size':>6} {'min corr':>9} {'signs':>6} {'RSE':>6} {'best epoch':>10} "
          f"{'train s':>8} {'credit s':>9}")
    for target in args.targets:
        for seed in args.seeds:
            df = generate(args.rows, seed)
            truth = true_contributions(df, target)
            arrays = table_to_arrays(df, target)
            for size in args.sizes:
                layers, hidden = parse_size(size)
                config = TrainConfig(hidden=hidden, layers=layers, epochs=args.epochs, seed=seed,
                                     batch_size=args.batch_size)
                result = train_return_model(arrays, config)
                start = time.perf_counter()
                contrib = redistribute(result, arrays, "averaged", 8, seed)
                credit_seconds = time.perf_counter() - start
                s = score(contrib, truth)
                effect = s["mean (truth)"].abs() > 1e-12
                held = result.val_rows
                rse = quality_gate(arrays.returns[held], contrib["prediction"].to_numpy()[held])["rse"]
                print(f"{target[:28]:>28} {seed:>4d} {size:>6} {s.loc[effect, 'correlation'].min():9.3f} "
                      f"{int(s['sign right'].sum()):>4d}/8 {rse:6.3f} {result.best_epoch:>10d} "
                      f"{result.seconds:8.1f} {credit_seconds:9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
