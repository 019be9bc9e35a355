"""The return predictor: a baseline from the step-0 state, plus an LSTM that reads the eight actions.

Every prediction, before any action (step 0) and after each of the eight actions (steps 1..8), is

    g_t = baseline(state) + head(h_t)

in units of the return over its mean. `baseline(state)` = exp(linear + small MLP of the scaled state:
pre-period activity and segment) is positive and can follow the heavy tail of the outcome; without
state columns it is the constant 1 (the mean). The LSTM reads one action per step: which action it is
(one-hot), its scaled count, and the scaled counts of every action seen so far.

Why the state does not enter the LSTM by default (`state_path="baseline"`): action credit is read
from differences of predictions, and whatever the LSTM learns from the state mixes into those
differences. Fed the state at every step, the LSTM learned spurious state x action interactions
(credit for a merch purchase that grew with the fan's pre-period streams), and its credit for the
streaming actions, which are strongly correlated with pre-period streaming, leaked into the baseline.
Keeping the state to the baseline makes each fan's credit a function of what the fan did, on top of a
baseline that reflects who the fan was. `state_path="init"` (state sets the LSTM's initial state) or
`"steps"` (state at every step) allow credit that depends on the fan's history, at that cost.

The auxiliary predictions (steps 0..7) have their own head (`aux_head=True`): RUDDER pulls them towards
the final return, i.e. they learn E[return | state, actions so far], which includes the expected effect
of the actions still to come. Sharing the final prediction's head would drag the baseline towards
that expectation and shrink every action's credit (measured: 10-20% too little credit, the baseline
too high). The counterfactual credit (`counterfactual_path`) reads only final predictions.
"""

from __future__ import annotations

import torch
from torch import nn

N_ACTIONS = 8
# Rows per forward pass when predicting without gradients: on 2 CPU cores the LSTM kernels ran about a
# third faster at 2,048 rows than at 4,096 or 8,192 (the working set stays in cache).
INFERENCE_BATCH_ROWS = 2048
STATE_PATHS = ("baseline", "init", "steps")


def step_inputs(counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-step inputs (N, 9, S + 24) built from scaled counts (N, 8), state (N, S) and order (N, 8).

    Step 0 carries only the state (all zero without one); step t shows the t-th action of the order.
    """
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
    """Return predictor: a prediction after step 0 (state only) and after each of the eight actions."""

    def __init__(
        self, n_state: int, hidden: int = 32, layers: int = 1, state_path: str = "baseline", aux_head: bool = True
    ):
        super().__init__()
        if state_path not in STATE_PATHS:
            raise ValueError(f"state_path must be one of {', '.join(STATE_PATHS)}, not {state_path!r}")
        self.n_state, self.hidden, self.layers = n_state, hidden, layers
        self.state_path, self.aux_head = state_path, aux_head
        n_out = 2 if aux_head else 1  # [final, auxiliary]
        lstm_state = n_state if state_path == "steps" else 0
        self.lstm = nn.LSTM(lstm_state + 3 * N_ACTIONS, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, n_out)
        if n_state:
            self.base = nn.Sequential(nn.Linear(n_state, hidden), nn.Tanh(), nn.Linear(hidden, n_out))
            self.base_linear = nn.Linear(n_state, n_out, bias=False)
        if n_state and state_path == "init":
            self.init = nn.Linear(n_state, 2 * layers * hidden)

    def lstm_state(self, state: torch.Tensor) -> torch.Tensor:
        """The part of the state the LSTM's steps read (none unless state_path is "steps")."""
        return state if self.state_path == "steps" else state[:, :0]

    def initial(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The LSTM's initial (h, c): from the state if state_path is "init", else zeros (None)."""
        if self.state_path != "init" or not self.n_state:
            return None
        hc = torch.tanh(self.init(state)).reshape(len(state), 2, self.layers, self.hidden)
        return hc[:, 0].transpose(0, 1).contiguous(), hc[:, 1].transpose(0, 1).contiguous()

    def baseline(self, state: torch.Tensor) -> torch.Tensor:
        """exp(linear + MLP) of the state (N, n_out); 1 (the mean return) without state."""
        if not self.n_state:
            return state.new_ones(len(state), self.head.out_features)
        return torch.exp((self.base(state) + self.base_linear(state)).clamp(max=30.0))

    def run_lstm(
        self, x: torch.Tensor, initial: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The LSTM over per-step inputs x (N, T, F) that start at step 0, as built by `step_inputs`.

        When the LSTM reads no state (the default), step 0's input is all zeros and its initial state
        is zero, so its output is the same for every row: it is run for one row and broadcast, which
        saves one of the nine steps' arithmetic in training and inference alike.
        """
        n = len(x)
        if initial is not None or self.lstm.input_size != 3 * N_ACTIONS or n < 2:
            return self.lstm(x, initial)
        out0, (h0, c0) = self.lstm(x.new_zeros(1, 1, x.shape[2]))
        h0 = h0.expand(-1, n, -1).contiguous()
        c0 = c0.expand(-1, n, -1).contiguous()
        if x.shape[1] == 1:
            return out0.expand(n, -1, -1), (h0, c0)
        out, hc = self.lstm(x[:, 1:], (h0, c0))
        return torch.cat([out0.expand(n, -1, -1), out], dim=1), hc

    def forward(self, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Predictions g_0..g_8 (N, 9) of the return over its mean; g_8 from the final head."""
        out, _ = self.run_lstm(step_inputs(counts, self.lstm_state(state), order), self.initial(state))
        z = self.head(out) + self.baseline(state)[:, None, :]  # (N, 9, n_out)
        if not self.aux_head:
            return z[..., 0]
        return torch.cat([z[:, :-1, 1], z[:, -1:, 0]], dim=1)

    def final(self, last: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Final predictions (N,) from the LSTM's top-layer output after the last step (N, H)."""
        return (self.head(last) + self.baseline(state))[:, 0]

    def config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return {"n_state": self.n_state, "hidden": self.hidden, "layers": self.layers,
                "state_path": self.state_path, "aux_head": self.aux_head}


def prefix_counts(counts: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Counts (9, N, 8) where layer t keeps the first t actions of each row's order and zeroes the rest."""
    n, k = counts.shape
    rank = torch.argsort(order, dim=1)  # position of each action in the row's order
    steps = torch.arange(k + 1, device=counts.device)[:, None, None]
    return counts[None] * (rank[None] < steps).to(counts.dtype)


@torch.no_grad()
def counterfactual_path_naive(
    model: ReturnLSTM, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor
) -> torch.Tensor:
    """Final predictions (N, 9) when only the first t actions of the order happened (t = 0..8),
    by running each of the nine variants from scratch (the reference for `counterfactual_path`)."""
    n, k = counts.shape
    variants = prefix_counts(counts, order).reshape((k + 1) * n, k)
    final = model(variants, state.repeat(k + 1, 1), order.repeat(k + 1, 1))[:, -1]
    return final.reshape(k + 1, n).T


@torch.no_grad()
def counterfactual_path(
    model: ReturnLSTM, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor
) -> torch.Tensor:
    """Final predictions (N, 9) when only the first t actions of the order happened (t = 0..8).

    Variant t's input sequence equals the real row's up to step t, so the LSTM state of the real
    prefix is reused and only the continuation (the later actions, with zero counts) is run: 45 LSTM
    steps per row instead of 81. At step s > t, variant t's input is [state part, its counts (the
    first t actions of the order), zero, which action step s shows]. Same numbers as
    `counterfactual_path_naive`, about twice as fast.
    """
    n, k = counts.shape
    variants = prefix_counts(counts, order)  # (9, N, 8); variant k is the real row
    lstm_state = model.lstm_state(state)
    real = step_inputs(counts, lstm_state, order)  # (N, 9, F)
    identity = real[:, 1:, -k:]  # (N, 8, 8): which action each step shows
    zeros = counts.new_zeros(n, k)
    out, (h, c) = model.run_lstm(real[:, :1], model.initial(state))  # step 0 is the same for every variant
    bh, bc = h[:, None], c[:, None]  # (layers, branches, N, H); the last branch is the real row
    for s in range(1, k + 1):
        # variants 0..s-2 have left the real row already; variant s-1 leaves it now.
        trunk_h, trunk_c = bh[:, -1:], bc[:, -1:]
        hh = torch.cat([bh[:, :-1], trunk_h, trunk_h], dim=1)
        cc = torch.cat([bc[:, :-1], trunk_c, trunk_c], dim=1)
        cont = torch.cat(
            [lstm_state.expand(s, n, -1), variants[:s], zeros.expand(s, n, k), identity[:, s - 1].expand(s, n, k)],
            dim=2,
        )
        x = torch.cat([cont, real[:, s][None]], dim=0)  # (s + 1, N, F)
        layers, b = hh.shape[0], s + 1
        out, (h, c) = model.lstm(
            x.reshape(b * n, 1, -1), (hh.reshape(layers, b * n, -1), cc.reshape(layers, b * n, -1))
        )
        bh, bc = h.reshape(layers, b, n, -1), c.reshape(layers, b, n, -1)
    last = out.reshape(k + 1, n, -1)  # top-layer output after step 8 of every variant
    return torch.stack([model.final(last[t], state) for t in range(k + 1)], dim=1)


@torch.no_grad()
def sequence_path(model: ReturnLSTM, counts: torch.Tensor, state: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The model's own predictions g_0..g_8 (N, 9) along the real sequence (RUDDER's, and the reference
    notebook's, reading: conditional expectations of the return given the actions so far)."""
    return model(counts, state, order)
