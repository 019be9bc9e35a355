"""Training the return predictor as RUDDER intends: main loss on the final prediction, auxiliary loss
pulling every step's prediction towards the same final return, per-sample squared error, shuffled
batches, held-out validation rows with early stopping, fixed seeds."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .model import ReturnLSTM
from .sequences import Arrays, Scaler, fit_scaler, random_orders, reference_order, split_rows


@dataclass
class TrainConfig:
    """Every training setting with its default; recorded with the results."""

    hidden: int = 32  # LSTM units
    layers: int = 1  # stacked LSTM layers
    epochs: int = 30  # most passes over the training rows (early stopping may end sooner)
    batch_size: int = 512  # rows per optimiser step
    learning_rate: float = 3e-3  # Adam step size
    aux_weight: float = 0.5  # weight of the auxiliary loss (steps 0..7 towards the final return)
    aux_target: str = "return"  # "return" (RUDDER) or "zero_until_last" (the reference notebook's recipe)
    loss: str = "squared"  # per-sample error: "squared" or "poisson" (deviance, for counts)
    order: str = "random"  # "random": a fresh random action order per row and batch; "reference": fixed
    use_state: bool = True  # feed the step-0 state (pre-period activity, segment) if the table has it
    validation_fraction: float = 0.2  # held-out rows for early stopping and the quality gate
    patience: int = 4  # epochs without validation improvement before stopping
    seed: int = 0  # seeds the split, the orders, the weights and the batches


@dataclass
class TrainResult:
    """A trained model with everything needed to use and judge it."""

    model: ReturnLSTM
    scaler: Scaler
    config: TrainConfig
    train_rows: np.ndarray
    val_rows: np.ndarray
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def set_threads() -> int:
    """Use every core this process may run on; return how many."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    """Fix the seeds torch and numpy draw from."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def step_targets(y: torch.Tensor, aux_target: str, n_steps: int) -> torch.Tensor:
    """Per-step training targets (B, n_steps): the final return at every step, or zero until the last."""
    targets = y[:, None].expand(-1, n_steps).clone()
    if aux_target == "zero_until_last":
        targets[:, :-1] = 0.0
    elif aux_target != "return":
        raise ValueError(f"aux_target must be 'return' or 'zero_until_last', not {aux_target!r}")
    return targets


def per_sample_error(pred: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Element-wise squared error, or Poisson deviance (up to a constant) for positive predictions."""
    if loss == "squared":
        return (pred - target).pow(2)
    if loss == "poisson":
        return pred - target * torch.log(pred.clamp(min=1e-8))
    raise ValueError(f"loss must be 'squared' or 'poisson', not {loss!r}")


def rudder_loss(pred: torch.Tensor, targets: torch.Tensor, aux_weight: float, loss: str = "squared") -> torch.Tensor:
    """Mean per-sample error of the final step plus aux_weight times that of the earlier steps."""
    main = per_sample_error(pred[:, -1], targets[:, -1], loss).mean()
    aux = per_sample_error(pred[:, :-1], targets[:, :-1], loss).mean()
    return main + aux_weight * aux


def orders_for(n: int, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Action orders for n rows under the configured ordering."""
    return random_orders(n, rng) if config.order == "random" else reference_order(n)


def relative_squared_error(y: np.ndarray, pred: np.ndarray) -> float:
    """sum (y - pred)^2 / sum (y - mean y)^2: 0 is perfect, 1 is no better than the mean."""
    denom = float(((y - y.mean()) ** 2).sum())
    return float(((y - pred) ** 2).sum()) / denom if denom > 0 else float("nan")


def scaled_tensors(arrays: Arrays, scaler: Scaler) -> tuple[torch.Tensor, ...]:
    """Scaled counts, state and return as tensors for the whole table (no state if the scaler has none)."""
    state = arrays.state[:, : len(scaler.state_mean)]
    return (
        torch.from_numpy(scaler.counts(arrays.counts)),
        torch.from_numpy(scaler.state(state)),
        torch.from_numpy(scaler.returns(arrays.returns)),
    )


def train_return_model(
    arrays: Arrays,
    config: TrainConfig | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train the LSTM return predictor on a seeded split of the rows, with early stopping."""
    config = config or TrainConfig()
    if config.epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {config.epochs}")
    set_threads()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    train_rows, val_rows = split_rows(len(arrays.returns), config.validation_fraction, config.seed)
    scaler = fit_scaler(arrays, train_rows)
    if not config.use_state:
        scaler = Scaler(scaler.count_scale, [], [], scaler.return_mean, scaler.return_scale)
    counts, state, y = scaled_tensors(arrays, scaler)
    model = ReturnLSTM(state.shape[1], config.hidden, config.layers)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    val_order = torch.from_numpy(orders_for(len(val_rows), config, np.random.default_rng(config.seed + 1)))
    v_counts, v_state, v_y = counts[val_rows], state[val_rows], y[val_rows]
    result = TrainResult(model, scaler, config, train_rows, val_rows)
    best, best_state, stale = float("inf"), None, 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        perm = torch.from_numpy(rng.permutation(train_rows))
        total, seen = 0.0, 0
        for batch in perm.split(config.batch_size):
            order = torch.from_numpy(orders_for(len(batch), config, rng))
            pred = model(counts[batch], state[batch], order)
            loss = rudder_loss(
                pred, step_targets(y[batch], config.aux_target, pred.shape[1]), config.aux_weight, config.loss
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        model.eval()
        with torch.no_grad():
            v_pred = torch.cat(
                [model(c, s, o)[:, -1] for c, s, o in zip(
                    v_counts.split(8192), v_state.split(8192), val_order.split(8192))]
            ) if len(val_rows) else torch.zeros(0)
        val_loss = float((v_pred - v_y).pow(2).mean()) if len(val_rows) else float("nan")
        row = {
            "epoch": epoch,
            "train_loss": total / max(seen, 1),
            "val_loss": val_loss,
            "val_rse": relative_squared_error(v_y.numpy().astype(np.float64), v_pred.numpy().astype(np.float64))
            if len(val_rows) else float("nan"),
            "seconds": time.perf_counter() - start,
        }
        result.history.append(row)
        if on_epoch:
            on_epoch(row)
        if val_loss < best - 1e-6 or not np.isfinite(best):
            best, best_state, stale, result.best_epoch = val_loss, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def save_model(path: str | Path, result: TrainResult) -> None:
    """Save weights, scaling, settings, split and history to one file."""
    torch.save(
        {
            "state_dict": result.model.state_dict(),
            "model_config": result.model.config(),
            "scaler": result.scaler.to_dict(),
            "train_config": asdict(result.config),
            "train_rows": result.train_rows,
            "val_rows": result.val_rows,
            "history": result.history,
            "best_epoch": result.best_epoch,
            "seconds": result.seconds,
        },
        path,
    )


def load_model(path: str | Path) -> TrainResult:
    """Load what save_model wrote."""
    saved = torch.load(path, weights_only=False)
    model = ReturnLSTM(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return TrainResult(
        model,
        Scaler(**saved["scaler"]),
        TrainConfig(**saved["train_config"]),
        saved["train_rows"],
        saved["val_rows"],
        saved["history"],
        saved["best_epoch"],
        saved["seconds"],
    )
