"""The return predictor: an LSTM that reads a step-0 state, then the eight actions one at a time.

Step 0 carries only the state (pre-period activity and segment), so the baseline expectation has its
own place. Step t (1..8) shows the t-th action of the row's order: which action it is (one-hot), its
scaled count, and the scaled counts of every action seen so far. The head predicts the return (over
its mean, through an exponential so that it is positive and can follow heavy tails) after every step.
"""

from __future__ import annotations

import torch
from torch import nn

N_ACTIONS = 8


def step_inputs(counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-step inputs (N, 9, S + 24) built from scaled counts (N, 8), state (N, S) and order (N, 8)."""
    n, k = counts.shape
    identity = torch.nn.functional.one_hot(order, k).to(counts.dtype)  # (N, 8 steps, 8 actions)
    step_count = counts.gather(1, order)  # (N, 8): count of the action shown at each step
    seen = identity.cumsum(dim=1)  # (N, 8, 8): 1 where the action was shown at or before the step
    observed = seen * counts[:, None, :]
    action = identity * step_count[:, :, None]
    steps = torch.cat([observed, action, identity], dim=2)  # (N, 8, 24)
    steps = torch.cat([steps.new_zeros(n, 1, 3 * k), steps], dim=1)  # step 0: no action yet
    state_part = state[:, None, :].expand(n, k + 1, state.shape[1])
    return torch.cat([state_part, steps], dim=2)


class ReturnLSTM(nn.Module):
    """LSTM return predictor: outputs a return prediction after step 0 (state) and after each action."""

    def __init__(self, n_state: int, hidden: int = 32, layers: int = 1):
        super().__init__()
        self.n_state, self.hidden, self.layers = n_state, hidden, layers
        self.lstm = nn.LSTM(n_state + 3 * N_ACTIONS, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Predictions g_0..g_8 (N, 9) of the return over its mean; positive, as counts are."""
        out, _ = self.lstm(step_inputs(counts, state, order))
        return torch.exp(self.head(out).squeeze(-1).clamp(max=30.0))

    def config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return {"n_state": self.n_state, "hidden": self.hidden, "layers": self.layers}


def prefix_counts(counts: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Counts (9, N, 8) where layer t keeps the first t actions of each row's order and zeroes the rest."""
    n, k = counts.shape
    rank = torch.argsort(order, dim=1)  # position of each action in the row's order
    steps = torch.arange(k + 1, device=counts.device)[:, None, None]
    return counts[None] * (rank[None] < steps).to(counts.dtype)


@torch.no_grad()
def counterfactual_path(
    model: ReturnLSTM, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor
) -> torch.Tensor:
    """Final predictions (N, 9) when only the first t actions of the order happened (t = 0..8)."""
    n, k = counts.shape
    variants = prefix_counts(counts, order).reshape((k + 1) * n, k)
    final = model(variants, state.repeat(k + 1, 1), order.repeat(k + 1, 1))[:, -1]
    return final.reshape(k + 1, n).T
