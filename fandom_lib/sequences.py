"""From a table to arrays: the N x 8 action counts, the step-0 state and the return, scaled for heavy tails.

The per-step inputs of the sequence are never stored: the model builds them from the N x 8 counts and
an order (see `model.step_inputs`), so memory stays at N x 8 whatever the sequence length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .schema import ACTIONS, PRE_PERIOD_COLUMNS, SEGMENT_COLUMNS


@dataclass
class Arrays:
    """Whole-table arrays for one target: raw counts, raw state, return, and the table's row index."""

    counts: np.ndarray  # (N, 8) float32, raw action counts in ACTIONS order
    state: np.ndarray  # (N, S) float32, raw state columns (S may be 0)
    returns: np.ndarray  # (N,) float64, the target in its own units
    index: pd.Index
    state_columns: list[str]


@dataclass
class Scaler:
    """Heavy-tail scaling fitted on training rows: log1p counts over their spread; return over its mean."""

    count_scale: list[float]
    state_mean: list[float]
    state_scale: list[float]
    return_mean: float
    return_scale: float

    def counts(self, counts: np.ndarray) -> np.ndarray:
        """log1p(count) / spread: zero stays zero, so an absent action is a zero input."""
        return (np.log1p(counts) / np.asarray(self.count_scale)).astype(np.float32)

    def state(self, state: np.ndarray) -> np.ndarray:
        """log1p(state) standardised."""
        if state.shape[1] == 0:
            return state.astype(np.float32)
        z = (np.log1p(state) - np.asarray(self.state_mean)) / np.asarray(self.state_scale)
        return z.astype(np.float32)

    def returns(self, y: np.ndarray) -> np.ndarray:
        """Return over its training mean (a linear map, so differences stay proportional to target units)."""
        return ((y - self.return_mean) / self.return_scale).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain-JSON form, saved with the model."""
        return asdict(self)


def state_columns_present(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The step-0 state columns the table has, and those it lacks."""
    wanted = list(SEGMENT_COLUMNS) + list(PRE_PERIOD_COLUMNS)
    have = [c for c in wanted if c in df.columns]
    return have, [c for c in wanted if c not in df.columns]


def table_to_arrays(df: pd.DataFrame, target: str, state_columns: list[str] | None = None) -> Arrays:
    """Whole-column extraction of counts, state and return from a validated table."""
    if state_columns is None:
        state_columns, _ = state_columns_present(df)
    counts = df[list(ACTIONS)].to_numpy(np.float32)
    state = (
        df[state_columns].to_numpy(np.float32)
        if state_columns
        else np.zeros((len(df), 0), np.float32)
    )
    return Arrays(counts, state, df[target].to_numpy(np.float64), df.index, list(state_columns))


def fit_scaler(arrays: Arrays, rows: np.ndarray) -> Scaler:
    """Fit the scaling on the given (training) rows only."""
    logc = np.log1p(arrays.counts[rows].astype(np.float64))
    count_scale = np.maximum(logc.std(axis=0), 1e-3)
    logs = np.log1p(arrays.state[rows].astype(np.float64))
    y = arrays.returns[rows]
    return Scaler(
        count_scale=count_scale.tolist(),
        state_mean=logs.mean(axis=0).tolist(),
        state_scale=np.maximum(logs.std(axis=0), 1e-3).tolist(),
        return_mean=0.0,
        return_scale=float(y.mean()) if y.mean() > 0 else 1.0,
    )


def split_rows(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of row positions into training and held-out validation rows."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val = int(round(n * validation_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def reference_order(n: int) -> np.ndarray:
    """The reference notebook's fixed order (saves first, ..., programmed streams last) for n rows."""
    return np.broadcast_to(np.arange(len(ACTIONS)), (n, len(ACTIONS))).copy()


def random_orders(n: int, rng: np.random.Generator) -> np.ndarray:
    """An independent random order of the eight actions for each of n rows, as one array operation."""
    return np.argsort(rng.random((n, len(ACTIONS))), axis=1)
