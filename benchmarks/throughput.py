"""Throughput: training and inference rows/s, peak memory and end-to-end time per target, against a
rebuild of the reference notebook's data path measured in the same run.

    python benchmarks/throughput.py            # 100k and 1M rows (about 15 minutes on 2 cores)
    python benchmarks/throughput.py --quick    # 100k rows only, shorter timings

The reference data path (rebuilt here from its description, not its code): every sample is built with a
pandas `.loc` row lookup and float64 loops into an 8 x 16 observation/action array, batches of 128
through a DataLoader, a 2-layer 64-unit LSTM, and inference one row at a time with the predictions
collected in a list (the issue measured 700 training and 440 inference rows/s for the original). This project's path at the same model size:
N x 8 counts in memory, per-step inputs built inside the model, large shuffled batches, inference for
all rows in batches. Peak FLOP fraction: the LSTM's multiply-adds per second over the machine's own
float32 matrix-multiply rate, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fandom_lib.model import INFERENCE_BATCH_ROWS, ReturnLSTM  # noqa: E402
from fandom_lib.schema import ACTIONS, DEFAULT_TARGET  # noqa: E402
from fandom_lib.sequences import random_orders, table_to_arrays  # noqa: E402
from fandom_lib.synthetic import generate  # noqa: E402
from fandom_lib.training import TrainConfig, scaled_tensors, set_threads, train_return_model  # noqa: E402


# ----------------------------------------------------------------- the reference data path, rebuilt


class RowLookupDataset(torch.utils.data.Dataset):
    """The reference's dataset: each sample is a one-row `.loc` lookup expanded, in float64 loops, into
    an 8 x 8 observation array (counts seen so far), an 8 x 8 action array and an 8-step reward, then
    cast to float32."""

    def __init__(self, table: pd.DataFrame, target: str):
        self.table, self.target = table, target

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        rows = self.table.loc[[i], :]
        counts = rows[list(ACTIONS)].to_numpy()
        returns = rows[self.target].to_numpy()
        n, k = counts.shape
        obs = np.zeros((n * k, k))
        act = np.zeros((n * k, k))
        reward = np.zeros(n * k)
        for r in range(n):
            for t in range(k):
                obs[r * k + t:(r + 1) * k, t] = counts[r, t]
                act[r * k + t, t] = counts[r, t]
            reward[(r + 1) * k - 1] = returns[r]
        return obs.astype(np.float32), act.astype(np.float32), reward.astype(np.float32)


def reference_table(rows: int) -> pd.DataFrame:
    """A synthetic table in the real schema, subsampled and re-indexed as the reference notebook does."""
    return generate(rows, 0).sample(frac=1.0, random_state=41).reset_index()


class ReferenceLSTM(nn.Module):
    """2-layer LSTM on concatenated observation and action vectors, a prediction per step."""

    def __init__(self, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(16, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(torch.cat([obs, act], dim=2))
        return self.fc(out).squeeze(-1)


def reference_training_rows_per_s(table: pd.DataFrame, seconds: float) -> float:
    """Rows/s of the reference training loop (row lookups, batch 128), timed for about `seconds`."""
    model = ReferenceLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(RowLookupDataset(table, DEFAULT_TARGET), batch_size=128, shuffle=True)
    rows, start = 0, time.perf_counter()
    for obs, act, rew in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(obs, act), rew)
        loss.backward()
        opt.step()
        rows += len(obs)
        if time.perf_counter() - start > seconds:
            break
    return rows / (time.perf_counter() - start)


def reference_inference_rows_per_s(table: pd.DataFrame, seconds: float) -> float:
    """Rows/s of the reference inference: a row lookup, tensor copies and one forward pass per row,
    predictions collected in a list, then differenced into redistributed rewards."""
    model = ReferenceLSTM().eval()
    data = RowLookupDataset(table, DEFAULT_TARGET)
    predictions = []
    start = time.perf_counter()
    for i in range(len(data)):
        obs, act, _ = data[i]
        obs_t, act_t = torch.tensor(obs, dtype=torch.float32), torch.tensor(act, dtype=torch.float32)
        with torch.no_grad():
            predictions.append(model(obs_t.unsqueeze(0), act_t.unsqueeze(0)).squeeze().numpy())
        if time.perf_counter() - start > seconds:
            break
    g = torch.tensor(np.array(predictions))
    torch.cat([g[:, :1], g[:, 1:] - g[:, :-1]], dim=1)
    return len(predictions) / (time.perf_counter() - start)


# ----------------------------------------------------------------- this project's path


def project_training_rows_per_s(arrays, hidden: int, layers: int, epochs: int) -> tuple[float, float]:
    """Rows/s over whole epochs of this project's training (default settings), and the seconds they took."""
    config = TrainConfig(hidden=hidden, layers=layers, epochs=epochs, patience=epochs + 1)
    result = train_return_model(arrays, config)
    rows = len(result.train_rows) * len(result.history)
    return rows / result.seconds, result.seconds


def project_inference_rows_per_s(arrays, hidden: int, layers: int, batch_rows: int = INFERENCE_BATCH_ROWS) -> float:
    """Rows/s of this project's inference: every step's prediction for all rows, in batches."""
    from fandom_lib.sequences import fit_scaler

    scaler = fit_scaler(arrays, np.arange(len(arrays.returns)))
    counts, state, _ = scaled_tensors(arrays, scaler)
    order = torch.from_numpy(random_orders(len(counts), np.random.default_rng(0)))
    model = ReturnLSTM(state.shape[1], hidden, layers).eval()
    with torch.inference_mode():  # warm-up: the first call sets up the LSTM kernels
        model(counts[:batch_rows], state[:batch_rows], order[:batch_rows])
    start = time.perf_counter()
    with torch.inference_mode():
        for c, s, o in zip(counts.split(batch_rows), state.split(batch_rows), order.split(batch_rows)):
            model(c, s, o)
    return len(counts) / (time.perf_counter() - start)


def lstm_flops_per_row(n_input: int, hidden: int, layers: int, steps: int = 8) -> float:
    """Multiply-add FLOPs of one row's forward pass (2 per multiply-add, gates only); eight steps per
    row, as the shared step 0 is computed once per batch."""
    per_step = 0.0
    for layer in range(layers):
        width = n_input if layer == 0 else hidden
        per_step += 2 * 4 * hidden * (width + hidden)
    return per_step * steps


def matmul_peak_flops(seconds: float = 2.0, n: int = 2048) -> float:
    """The machine's float32 matrix-multiply rate (FLOP/s), the practical peak for this arithmetic."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        reps += 1
    return reps * 2 * n**3 / (time.perf_counter() - start)


def end_to_end(rows: int, target: str, out: Path) -> tuple[float, float]:
    """Seconds and peak memory (GB, largest process) of run_all.py for one target on synthetic rows."""
    cmd = [sys.executable, "run_all.py", "--out", str(out), "--targets", target, "--force", "-p", f"rows={rows}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parent.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return seconds, peak_kb / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k rows only, shorter timings")
    ap.add_argument("--sizes", nargs="+", type=int, default=None, help="table sizes (default 100000 1000000)")
    ap.add_argument("--out", default="/tmp/fandom_throughput", help="scratch folder for end-to-end runs")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the run_all.py timings")
    args = ap.parse_args()
    sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    threads = set_threads()
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads")
    peak = matmul_peak_flops()
    print(f"float32 matmul rate (practical peak): {peak / 1e9:.1f} GFLOP/s")
    ref_seconds = 10 if args.quick else 30
    ref_table = reference_table(20_000)
    ref_train = reference_training_rows_per_s(ref_table, ref_seconds)
    ref_infer = reference_inference_rows_per_s(ref_table, ref_seconds)
    print(f"reference data path (2x64 LSTM): training {ref_train:,.0f} rows/s, inference {ref_infer:,.0f} rows/s")
    default = TrainConfig()
    print()
    header = f"{'rows':>9} {'model':>7} {'train rows/s':>13} {'x ref':>6} {'infer rows/s':>13} {'x ref':>6} {'FLOP frac (train)':>18}"
    print(header)
    for n in sizes:
        arrays = table_to_arrays(generate(n, 0), DEFAULT_TARGET)
        for hidden, layers, name in ((64, 2, "2x64"), (default.hidden, default.layers, f"{default.layers}x{default.hidden}")):
            epochs = 1 if n >= 1_000_000 or args.quick else 2
            train_rate, _ = project_training_rows_per_s(arrays, hidden, layers, epochs)
            infer_rate = project_inference_rows_per_s(arrays, hidden, layers)
            n_input = ReturnLSTM(arrays.state.shape[1], hidden, layers).lstm.input_size
            frac = train_rate * 3 * lstm_flops_per_row(n_input, hidden, layers) / peak
            print(f"{n:>9,} {name:>7} {train_rate:>13,.0f} {train_rate / ref_train:>6.0f} "
                  f"{infer_rate:>13,.0f} {infer_rate / ref_infer:>6.0f} {frac:>18.1%}")
    if not args.no_end_to_end:
        print()
        print("end to end, run_all.py for one target at the default model size (all four notebooks):")
        for n in sizes:
            seconds, gb = end_to_end(n, DEFAULT_TARGET, Path(args.out) / str(n))
            print(f"{n:>9,} rows: {seconds:6.0f} s, peak memory of the largest process {gb:.2f} GB")


if __name__ == "__main__":
    main()
