"""Return decomposition: each action's share of the predicted return, from differences of predictions.

For a row and an order of its eight actions, g_t is the model's predicted return had the row done only
the first t actions of the order (and none of the rest); g_0 is the baseline from the step-0 state
alone. The redistributed reward of the t-th action is r_t = g_t - g_{t-1}; the rewards telescope, so
baseline + sum of rewards = the final prediction g_8. Averaging each action's reward over random
orders gives order-free, Shapley-like credit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .model import counterfactual_path
from .schema import ACTIONS
from .sequences import Arrays, random_orders, reference_order
from .training import TrainResult, relative_squared_error, scaled_tensors

QUALITY_THRESHOLD = 0.2
"""RUDDER's Atari code trusts redistribution only where the return prediction's relative squared error is below 0.2."""


def prediction_paths(
    result: TrainResult, arrays: Arrays, order: np.ndarray, batch_rows: int = 8192
) -> np.ndarray:
    """g_0..g_8 (N, 9) in the target's own units for each row under the given orders (N, 8)."""
    counts, state, _ = scaled_tensors(arrays, result.scaler)
    order_t = torch.from_numpy(np.ascontiguousarray(order))
    parts = [
        counterfactual_path(result.model, c, s, o).numpy()
        for c, s, o in zip(counts.split(batch_rows), state.split(batch_rows), order_t.split(batch_rows))
    ]
    path = np.concatenate(parts) if parts else np.zeros((0, len(ACTIONS) + 1), np.float32)
    return path.astype(np.float64) * result.scaler.return_scale + result.scaler.return_mean


def rewards_by_action(path: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Redistributed rewards r_t = g_t - g_{t-1} (N, 8), moved from step positions to action columns."""
    steps = np.diff(path, axis=1)
    rewards = np.empty_like(steps)
    np.put_along_axis(rewards, order, steps, axis=1)
    return rewards


def redistribute(
    result: TrainResult,
    arrays: Arrays,
    method: str = "averaged",
    n_orders: int = 8,
    seed: int = 0,
    return_correction: bool = False,
) -> pd.DataFrame:
    """Per-row contributions of each action, plus baseline, prediction, return and residual."""
    n = len(arrays.returns)
    if method == "averaged":
        rng = np.random.default_rng(seed)
        orders = [random_orders(n, rng) for _ in range(max(n_orders, 1))]
    elif method == "reference":
        orders = [reference_order(n)]
    else:
        raise ValueError(f"method must be 'averaged' or 'reference', not {method!r}")
    rewards = np.zeros((n, len(ACTIONS)))
    baseline = np.zeros(n)
    for order in orders:
        path = prediction_paths(result, arrays, order)
        rewards += rewards_by_action(path, order)
        baseline += path[:, 0]
    rewards /= len(orders)
    baseline /= len(orders)
    out = pd.DataFrame(rewards, index=arrays.index, columns=list(ACTIONS))
    out["baseline"] = baseline
    out["prediction"] = baseline + rewards.sum(axis=1)
    out["return"] = arrays.returns
    out["residual"] = out["return"] - out["prediction"]
    if return_correction:
        out = apply_return_correction(out)
    return out


def apply_return_correction(contrib: pd.DataFrame) -> pd.DataFrame:
    """Spread each row's residual (return - prediction) evenly over its eight actions."""
    out = contrib.copy()
    share = (out["return"] - out["baseline"] - out[list(ACTIONS)].sum(axis=1)) / len(ACTIONS)
    out[list(ACTIONS)] = out[list(ACTIONS)].add(share, axis=0)
    return out


def quality_gate(returns: np.ndarray, predictions: np.ndarray, threshold: float = QUALITY_THRESHOLD) -> dict:
    """Relative squared error of the return prediction on held-out rows, whether it passes, and why."""
    rse = relative_squared_error(np.asarray(returns, float), np.asarray(predictions, float))
    passed = bool(np.isfinite(rse) and rse < threshold)
    explained = 100 * (1 - rse) if np.isfinite(rse) else float("nan")
    if passed:
        message = (
            f"Quality gate passed: on held-out fans the model's prediction of the outcome has a relative "
            f"squared error of {rse:.3f} (below {threshold}); it explains {explained:.0f}% of the variation, "
            "so the per-action credit can be trusted."
        )
    else:
        message = (
            f"WARNING - quality gate failed: on held-out fans the relative squared error of the outcome "
            f"prediction is {rse:.3f} (the gate is {threshold}); the model explains only {explained:.0f}% of "
            "the variation. Per-fan contributions are unreliable; treat averages over many fans as rough "
            "indications. Rare outcomes (a few tickets, merch or shares) are mostly chance at the level of "
            "one fan, which no model can predict."
        )
    return {"rse": rse, "threshold": threshold, "passed": passed, "message": message}
