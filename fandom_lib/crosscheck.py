"""Independent estimates of each action's contribution, to check the LSTM's redistribution against.

- Integrated gradients (captum) on the same trained model: attribution of the final prediction to each
  action's count, integrated from "no actions" to the row's counts (sums to prediction - baseline).
- An additive model: least squares of the return on the state (on the log scale and as raw counts, so
  that "next month is about c times last month" can be fitted) and, per action, did-it-at-all,
  log1p(count) and log1p(count)^2 (a curve that can saturate); its contribution for an action is its
  fitted terms at the row's count (zero at zero).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients

from .schema import ACTIONS
from .sequences import Arrays, random_orders
from .training import TrainResult, scaled_tensors


def integrated_gradients(
    result: TrainResult, arrays: Arrays, rows: np.ndarray, n_steps: int = 32, seed: int = 0, batch_rows: int = 2048
) -> pd.DataFrame:
    """Per-row integrated-gradient contribution of each action (target units), zero counts as baseline."""
    counts, state, _ = scaled_tensors(arrays, result.scaler)
    order = torch.from_numpy(random_orders(len(arrays.returns), np.random.default_rng(seed)))
    model, scale = result.model, result.scaler.return_scale
    parts = []
    for chunk in np.array_split(rows, max(1, int(np.ceil(len(rows) / batch_rows)))):
        if len(chunk) == 0:
            continue
        s, o = state[chunk], order[chunk]

        def final_prediction(c: torch.Tensor) -> torch.Tensor:
            reps = c.shape[0] // len(chunk)
            return model(c, s.repeat(reps, 1), o.repeat(reps, 1))[:, -1] * scale

        ig = IntegratedGradients(final_prediction)
        x = counts[chunk].clone().requires_grad_(True)
        parts.append(ig.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps).detach().numpy())
    values = np.concatenate(parts) if parts else np.zeros((0, len(ACTIONS)))
    return pd.DataFrame(values.astype(np.float64), index=arrays.index[rows], columns=list(ACTIONS))


ADDITIVE_TERMS = 3  # per action: count > 0, log1p(count), log1p(count)^2


def additive_features(arrays: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """State design (intercept, log1p(state), state) and per-action terms (N, 3 x 8), grouped by term:
    [count > 0] * 8, [log1p(count)] * 8, [log1p(count)^2] * 8."""
    raw = arrays.state.astype(np.float64)
    design_state = np.column_stack([np.ones(len(raw)), np.log1p(raw), raw])
    x = arrays.counts.astype(np.float64)
    log = np.log1p(x)
    terms = np.column_stack([(x > 0).astype(np.float64), log, log**2])
    return design_state, terms


def additive_model(arrays: Arrays, train_rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Fit the additive model on the training rows; per-row contributions for all rows and predictions."""
    design_state, terms = additive_features(arrays)
    design = np.column_stack([design_state, terms])
    coef, *_ = np.linalg.lstsq(design[train_rows], arrays.returns[train_rows], rcond=None)
    k = len(ACTIONS)
    term_coef = coef[design_state.shape[1] :].reshape(ADDITIVE_TERMS, k)
    contrib = sum(terms[:, j * k : (j + 1) * k] * term_coef[j] for j in range(ADDITIVE_TERMS))
    frame = pd.DataFrame(contrib, index=arrays.index, columns=list(ACTIONS))
    return frame, design @ coef
