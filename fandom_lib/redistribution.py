"""Return decomposition: each action's share of the predicted return, from differences of predictions.

For a row and an order of its eight actions, g_t is the model's predicted return had the row done only
the first t actions of the order (and none of the rest); g_0 is the baseline from the step-0 state
alone. The redistributed reward of the t-th action is r_t = g_t - g_{t-1}; the rewards telescope, so
baseline + sum of rewards = the final prediction g_8. Averaging each action's reward over random
orders gives order-free, Shapley-like credit (the Shapley value of the model's prediction against
"none of these actions", estimated by sampling orders).

Why "had the row done only the first t actions" rather than RUDDER's own reading (the prediction
along the real sequence, an estimate of E[return | actions so far]): differences of conditional
expectations have mean zero for every action by construction (E[g_t - g_{t-1}] = 0), so they can say
how much more or less than expected a fan earned, but not what an action is worth; "the mean
contribution has the right sign" would be meaningless. The reference notebook's reading is kept as
method "reference_recipe", to show what it gets wrong.

Orders come in antithetic pairs (an order and its reverse). For a prediction that is additive in the
actions plus pairwise interactions, one pair already gives the exact Shapley value: every pair of
actions appears in both orders, so each interaction is split half and half. Random orders only reach
that on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .analysis import explained_share
from .model import INFERENCE_BATCH_ROWS, counterfactual_path, sequence_path
from .schema import ACTIONS
from .sequences import Arrays, random_orders, reference_order
from .training import TrainResult, relative_squared_error, scaled_tensors

QUALITY_THRESHOLD = 0.2
"""RUDDER's Atari code trusts redistribution only where the return prediction's relative squared error is below 0.2."""


def prediction_paths(
    result: TrainResult, arrays: Arrays, order: np.ndarray, batch_rows: int = INFERENCE_BATCH_ROWS, path: str = "counterfactual"
) -> np.ndarray:
    """g_0..g_8 (N, 9) in the target's own units for each row under the given orders (N, 8).

    path "counterfactual": g_t is the final prediction had only the first t actions happened;
    "sequence": the model's own step-t prediction along the real sequence (RUDDER's reading).
    """
    counts, state, _ = scaled_tensors(arrays, result.scaler)
    order_t = torch.from_numpy(np.ascontiguousarray(order))
    if path not in ("counterfactual", "sequence"):
        raise ValueError(f"path must be 'counterfactual' or 'sequence', not {path!r}")
    run = counterfactual_path if path == "counterfactual" else sequence_path
    parts = [
        run(result.model, c, s, o).numpy()
        for c, s, o in zip(counts.split(batch_rows), state.split(batch_rows), order_t.split(batch_rows))
    ]
    g = np.concatenate(parts) if parts else np.zeros((0, len(ACTIONS) + 1), np.float32)
    return g.astype(np.float64) * result.scaler.return_scale + result.scaler.return_mean


def rewards_by_action(path: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Redistributed rewards r_t = g_t - g_{t-1} (N, 8), moved from step positions to action columns."""
    steps = np.diff(path, axis=1)
    rewards = np.empty_like(steps)
    np.put_along_axis(rewards, order, steps, axis=1)
    return rewards


def averaging_orders(n: int, n_orders: int, seed: int = 0, antithetic: bool = True) -> list[np.ndarray]:
    """n_orders arrays of a random order per row; with antithetic, in pairs of an order and its reverse."""
    rng = np.random.default_rng(seed)
    orders: list[np.ndarray] = []
    while len(orders) < max(n_orders, 1):
        order = random_orders(n, rng)
        orders.append(order)
        if antithetic and len(orders) < n_orders:
            orders.append(np.ascontiguousarray(order[:, ::-1]))
    return orders


METHODS = ("averaged", "reference", "reference_recipe")


def redistribute(
    result: TrainResult,
    arrays: Arrays,
    method: str = "averaged",
    n_orders: int = 8,
    seed: int = 0,
    return_correction: bool = False,
    antithetic: bool = True,
) -> pd.DataFrame:
    """Per-row contributions of each action, plus baseline, prediction, return and residual.

    method "averaged": counterfactual credit averaged over n_orders random orders (antithetic pairs
    unless antithetic=False); "reference": counterfactual credit in the fixed reference order;
    "reference_recipe": the reference notebook's reading, the model's own predictions along the real
    sequence in the fixed order with the first action credited with everything predicted up to it
    (r_1 = g_1: no baseline, the first action absorbs it).
    """
    n = len(arrays.returns)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    orders = averaging_orders(n, n_orders, seed, antithetic) if method == "averaged" else [reference_order(n)]
    rewards = np.zeros((n, len(ACTIONS)))
    baseline = np.zeros(n)
    for order in orders:
        g = prediction_paths(result, arrays, order, path="sequence" if method == "reference_recipe" else "counterfactual")
        r = rewards_by_action(g, order)
        if method == "reference_recipe":
            first = order[:, :1]
            np.put_along_axis(r, first, np.take_along_axis(r, first, axis=1) + g[:, :1], axis=1)
        else:
            baseline += g[:, 0]
        rewards += r
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
    explained = explained_share(rse)
    if passed:
        message = (
            f"Quality gate passed: on held-out fans the model's prediction of the outcome has a relative "
            f"squared error of {rse:.3f} (below {threshold}); it explains {explained} of the variation, "
            "so the per-action credit can be trusted."
        )
    else:
        message = (
            f"WARNING - quality gate failed: on held-out fans the relative squared error of the outcome "
            f"prediction is {rse:.3f} (the gate is {threshold}); the model explains only {explained} of "
            "the variation. Credit can only be as good as the prediction it redistributes: treat the figures "
            "as indicative and read the cross-checks below. For rare outcomes (a few tickets, merch or shares "
            "per fan) most of the variation is chance, which no model can predict, so a failed gate is "
            "expected there; averages over many fans are more robust than any single fan's numbers."
        )
    return {"rse": rse, "threshold": threshold, "passed": passed, "message": message}
