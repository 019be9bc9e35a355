"""Figures for the reports (matplotlib/seaborn); each function returns its Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter
import numpy as np
import pandas as pd
import seaborn as sns

from .analysis import binned_means
from .schema import ACTION_LABELS, ACTIONS

sns.set_theme(style="whitegrid", context="notebook")
PALETTE = dict(zip(ACTIONS, sns.color_palette("tab10", len(ACTIONS))))


def training_curves(history: list[dict]) -> plt.Figure:
    """Training and held-out loss per epoch, and held-out relative squared error."""
    h = pd.DataFrame(history)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(h["epoch"], h["train_loss"], marker="o", label="training rows (mean over all batches)")
    a.plot(h["epoch"], h["val_loss"], marker="o", label="held-out rows (final prediction)")
    a.set(xlabel="epoch", ylabel="loss", title="Loss")
    a.legend()
    b.plot(h["epoch"], h["val_rse"], marker="o", color="C2")
    b.axhline(0.2, ls="--", color="grey", label="quality gate (0.2)")
    b.set(xlabel="epoch", ylabel="relative squared error", title="Held-out error of the return prediction")
    b.legend()
    for ax in (a, b):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def sample_steps(counts: pd.DataFrame, contrib: pd.DataFrame, target_label: str) -> plt.Figure:
    """For a few fans: their action counts, the predicted return step by step, and each action's reward."""
    n = len(contrib)
    fig, axes = plt.subplots(3, n, figsize=(3.6 * n, 8.5), squeeze=False, sharey="row")
    labels = [ACTION_LABELS[a] for a in ACTIONS]
    for j, idx in enumerate(contrib.index):
        row = contrib.loc[idx]
        rewards = row[list(ACTIONS)].to_numpy(float)
        path = row["baseline"] + np.concatenate([[0.0], np.cumsum(rewards)])
        ax = axes[0, j]
        bars = ax.bar(labels, counts.loc[idx, list(ACTIONS)].to_numpy(float), color=[PALETTE[a] for a in ACTIONS])
        ax.bar_label(bars, labels=[f"{v:g}" if v else "" for v in bars.datavalues], fontsize=8)
        ax.set_title(f"row {idx}: actions")
        ax.set_yscale("symlog")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.margins(y=0.25)
        ax = axes[1, j]
        ax.plot(["before"] + labels, path, marker="o", color="black")
        ax.axhline(row["return"], ls="--", color="C3", label=f"actual outcome {row['return']:.0f}")
        ax.set_title("predicted outcome after each action")
        ax.legend(loc="best", fontsize=8)
        ax = axes[2, j]
        ax.bar(labels, rewards, color=[PALETTE[a] for a in ACTIONS])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title("redistributed reward")
        for a in axes[:, j]:
            a.tick_params(axis="x", rotation=60, labelsize=8)
    axes[0, 0].set_ylabel("count (log scale)")
    axes[1, 0].set_ylabel("predicted outcome")
    axes[2, 0].set_ylabel("reward")
    fig.suptitle(f"Outcome: {target_label}. Path = baseline, then each action's reward added in turn")
    fig.tight_layout()
    return fig


def contribution_grid(table: pd.DataFrame, contrib: pd.DataFrame, target_label: str) -> plt.Figure:
    """Each action's contribution against its count: binned means with 95% intervals."""
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    for ax, action in zip(axes.flat, ACTIONS):
        b = binned_means(table.loc[contrib.index, action], contrib[action])
        x = np.arange(len(b))
        ax.errorbar(x, b["mean"], yerr=[b["mean"] - b["low"], b["high"] - b["mean"]], fmt="o-",
                    color=PALETTE[action], capsize=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, b["label"], rotation=45, fontsize=8)
        ax.set_title(ACTION_LABELS[action])
        ax.set_xlabel("count in the treatment period")
    for ax in axes[:, 0]:
        ax.set_ylabel("contribution")
    fig.suptitle(f"What each action earns in {target_label}, by how often the fan did it (mean and 95% interval)")
    fig.tight_layout()
    return fig


def mean_contribution_bars(means: pd.DataFrame, target_label: str) -> plt.Figure:
    """Mean contribution per action, one bar per method (columns of `means`)."""
    m = means.copy()
    m.index = [ACTION_LABELS[a] for a in m.index]
    fig, ax = plt.subplots(figsize=(9, 4))
    m.plot.barh(ax=ax)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"mean contribution per fan ({target_label})")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def truth_scatter(estimate: pd.DataFrame, truth: pd.DataFrame, max_points: int = 3000, seed: int = 0) -> plt.Figure:
    """Estimated against true per-row contribution, one panel per action."""
    rng = np.random.default_rng(seed)
    idx = estimate.index
    if len(idx) > max_points:
        idx = idx[np.sort(rng.choice(len(idx), max_points, replace=False))]
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    for ax, action in zip(axes.flat, ACTIONS):
        t, e = truth.loc[idx, action], estimate.loc[idx, action]
        ax.scatter(t, e, s=6, alpha=0.4, color=PALETTE[action])
        lo, hi = float(min(t.min(), e.min())), float(max(t.max(), e.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ax.set(title=ACTION_LABELS[action], xlabel="true contribution", ylabel="estimated")
    fig.suptitle("Estimated against true contribution per fan (dashed: perfect agreement)")
    fig.tight_layout()
    return fig
