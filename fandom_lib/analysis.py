"""Summaries of per-row contributions: binned means with intervals, per-action worth, agreement figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import ACTION_LABELS, ACTIONS

COUNT_BIN_EDGES: tuple[float, ...] = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, np.inf)
"""Left-closed count bins: 0, 1, 2, 3-4, 5-9, 10-19, ... (integer-friendly, log-spaced in the tail)."""


def bin_label(lo: float, hi: float) -> str:
    """'3-4' for [3, 5), '7' for [7, 8), '1000+' for [1000, inf)."""
    if not np.isfinite(hi):
        return f"{int(lo)}+"
    return f"{int(lo)}" if hi - lo == 1 else f"{int(lo)}-{int(hi) - 1}"


def binned_means(counts: pd.Series | np.ndarray, values: pd.Series | np.ndarray, min_rows: int = 5) -> pd.DataFrame:
    """Mean value per count bin with a 95% normal interval; bins with fewer than min_rows rows are left out."""
    counts = np.asarray(counts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(COUNT_BIN_EDGES)
    which = np.searchsorted(edges, counts, side="right") - 1
    frame = pd.DataFrame({"bin": which, "count": counts, "value": values})
    g = frame.groupby("bin")
    out = pd.DataFrame(
        {
            "rows": g.size(),
            "mean_count": g["count"].mean(),
            "mean": g["value"].mean(),
            "sd": g["value"].std(ddof=1).fillna(0.0),
        }
    )
    out = out[out["rows"] >= min_rows]
    half = 1.96 * out["sd"] / np.sqrt(out["rows"])
    out["low"], out["high"] = out["mean"] - half, out["mean"] + half
    out["label"] = [bin_label(edges[b], edges[b + 1]) for b in out.index]
    return out.reset_index(drop=True)[["label", "rows", "mean_count", "mean", "low", "high"]]


def worth_table(table: pd.DataFrame, contrib: pd.DataFrame, target_label: str) -> pd.DataFrame:
    """Per action: how many fans did it, and what one more of it is worth on average, in plain words."""
    rows = []
    for action in ACTIONS:
        x = table.loc[contrib.index, action].to_numpy(np.float64)
        r = contrib[action].to_numpy(np.float64)
        did = x > 0
        per_unit = r[did].sum() / x[did].sum() if did.any() else np.nan
        first = r[x == 1].mean() if (x == 1).any() else np.nan
        rows.append(
            {
                "action": action,
                "fans who did it": did.mean(),
                "mean count (those who did)": x[did].mean() if did.any() else np.nan,
                "mean contribution (all fans)": r.mean(),
                "worth of the first one": first,
                "worth per action": per_unit,
                "in words": (
                    f"one more {ACTION_LABELS[action]} is worth about {per_unit:+.3g} {target_label}"
                    if np.isfinite(per_unit)
                    else f"no fan did a {ACTION_LABELS[action]}: nothing to say"
                ),
            }
        )
    return pd.DataFrame(rows).set_index("action")


def mean_contributions(contrib: pd.DataFrame) -> dict[str, float]:
    """Mean contribution of each action over all rows."""
    return {a: float(contrib[a].mean()) for a in ACTIONS}


def safe_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, NaN where either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement(estimate: pd.DataFrame, other: pd.DataFrame, name: str = "other") -> pd.DataFrame:
    """Per action: correlation of per-row contributions, both means, and the mean difference."""
    rows = []
    for a in ACTIONS:
        e, o = estimate[a].to_numpy(float), other.loc[estimate.index, a].to_numpy(float)
        rows.append(
            {
                "action": a,
                "correlation": safe_corr(e, o),
                "mean (this estimate)": e.mean(),
                f"mean ({name})": o.mean(),
                "mean difference": (e - o).mean(),
                "mean absolute difference": np.abs(e - o).mean(),
            }
        )
    return pd.DataFrame(rows).set_index("action")


def truth_recovery(estimate: pd.DataFrame, truth: pd.DataFrame, zero_tolerance: float = 0.05) -> pd.DataFrame:
    """Per action against known truth: correlation, mean error, and whether the mean's sign is right.

    An action whose true mean is zero counts as right when its estimated mean is within
    zero_tolerance times the largest absolute true mean of any action.
    """
    table = agreement(estimate, truth, "truth")
    scale = table["mean (truth)"].abs().max()
    true_mean, est_mean = table["mean (truth)"], table["mean (this estimate)"]
    zero = true_mean.abs() <= 1e-12
    table["sign right"] = np.where(
        zero, est_mean.abs() <= zero_tolerance * scale, np.sign(est_mean) == np.sign(true_mean)
    )
    return table.rename(columns={"mean difference": "mean error"})


def describe_counts(table: pd.DataFrame, target: str) -> pd.DataFrame:
    """Per action and the target: share of zeros, mean, median, 99th percentile and maximum."""
    cols = list(ACTIONS) + [target]
    x = table[cols].astype(np.float64)
    return pd.DataFrame(
        {
            "share zero": (x == 0).mean(),
            "mean": x.mean(),
            "median": x.median(),
            "99th percentile": x.quantile(0.99),
            "max": x.max(),
        }
    )


def sample_table(table: pd.DataFrame, contrib: pd.DataFrame, rows: pd.Index) -> pd.DataFrame:
    """For a few rows: each action's count and reward side by side, then baseline, prediction and outcome."""
    labels = [ACTION_LABELS[a] for a in ACTIONS] + ["baseline (before any action)", "final prediction", "actual outcome"]
    parts = {}
    for idx in rows:
        c = contrib.loc[idx]
        parts[(f"row {idx}", "count")] = list(table.loc[idx, list(ACTIONS)].astype(float)) + [np.nan] * 3
        parts[(f"row {idx}", "reward")] = list(c[list(ACTIONS)]) + [c["baseline"], c["prediction"], c["return"]]
    return pd.DataFrame(parts, index=labels)


def explained_share(rse: float) -> str:
    """How much of the outcome's variation a prediction with this relative squared error explains, in words."""
    if not np.isfinite(rse):
        return "an unknown share"
    if rse >= 1:
        return "none (it predicts no better than the average outcome)"
    return f"{100 * (1 - rse):.0f}%"
