"""The embedded default: a seeded synthetic table in the study's schema whose outcome model is known.

Every user-artist row has a latent engagement that drives the segment, the pre-period activity and the
treatment-period actions (so actions are correlated and confounded through the pre-period). Each reward
target's expected value is

    mu = base(pre-period, segment) + sum_k beta_k * h_k(x_k) + gamma * h_i(x_i) * h_j(x_j)

with saturating h_k(x) = s_k * (1 - exp(-x / s_k)) (worth about beta_k per unit for the first few
actions), and the observed outcome is Poisson(mu). The true contribution of action k for a row is its
exact Shapley value of mu against "none of this action": beta_k * h_k(x_k) plus half of any
interaction it takes part in. Contributions plus the no-action baseline sum to mu.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .schema import (
    ACTIONS,
    ACTIVITIES,
    CUMULATIVE_ACTIVITIES,
    KNOWN_COLUMNS,
    PRE_PERIODS,
    TARGETS,
    canonical_target,
)

# Mean count per period of each activity for a typical user, and the spread of users around it.
# Tickets and merch are rare (about 4% of user-artist pairs buy any in a period): at 3%, 50,000 rows
# held too few buyers (about 1,200 in training) for any method to pin a per-fan effect.
BASE_RATE = dict(zip(ACTIVITIES, (0.5, 0.15, 0.35, 0.04, 0.04, 0.2, 8.0, 6.0)))
RATE_SPREAD = dict(zip(ACTIVITIES, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.5)))
# Saturation scale s_k of each action's effect: beyond about s_k actions, more adds little.
SATURATION = dict(zip(ACTIONS, (5.0, 1.0, 3.0, 1.0, 1.0, 3.0, 40.0, 40.0)))


def _effects(*betas: float) -> dict[str, float]:
    return dict(zip(ACTIONS, betas))


# beta_k: outcome units per action for the first few actions. Each target has one action with no
# effect and one with a negative effect. Order: saves, follows, playlists, tickets, merch, shares,
# active streams, programmed streams. (A concert ticket is worth about +8 active streams of the artist
# in the next four weeks, a merch purchase +5: large enough to be told apart from chance among the
# few buyers in 50,000 rows.)
DEFAULT_EFFECTS: dict[str, dict[str, float]] = {
    "streams_active_streams_following_four_weeks": _effects(3.0, 4.0, 2.0, 8.0, 5.0, 0.0, 1.2, -0.15),
    "streams_programmed_streams_following_four_weeks": _effects(1.0, 1.5, 4.0, 2.0, -1.0, 0.0, 0.3, 0.8),
    "shares_following_four_weeks": _effects(0.05, 0.1, 0.0, 0.2, 0.1, 0.3, 0.01, -0.004),
    "merch_following_four_weeks": _effects(0.02, 0.05, 0.0, 0.2, 0.3, 0.02, 0.004, -0.002),
    "tickets_following_four_weeks": _effects(0.02, 0.05, 0.01, 0.4, 0.1, 0.0, 0.003, -0.001),
}
# gamma and the pair of actions that interact (their joint term is split equally in the truth).
DEFAULT_INTERACTIONS: dict[str, tuple[str, str, float]] = {
    "streams_active_streams_following_four_weeks": (ACTIONS[0], ACTIONS[6], 0.02),
    "streams_programmed_streams_following_four_weeks": (ACTIONS[2], ACTIONS[7], 0.01),
    "shares_following_four_weeks": (ACTIONS[1], ACTIONS[5], 0.05),
    "merch_following_four_weeks": (ACTIONS[3], ACTIONS[4], 0.1),
    "tickets_following_four_weeks": (ACTIONS[1], ACTIONS[3], 0.1),
}
# Outcome without any treatment-period action: floor + carry * mean pre-period count of the same
# activity + a bump for super listeners.
BASELINE = {
    "streams_active_streams_following_four_weeks": (8.0, 0.8, 4.0),
    "streams_programmed_streams_following_four_weeks": (2.0, 0.8, 2.0),
    "shares_following_four_weeks": (0.2, 0.8, 0.1),
    "merch_following_four_weeks": (0.06, 0.8, 0.02),
    "tickets_following_four_weeks": (0.04, 0.8, 0.02),
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Settings of the synthetic generator; the defaults make the embedded default table."""

    n_rows: int = 100_000
    seed: int = 0
    action_correlation: float = 0.75  # share of each activity's user-level spread due to engagement
    confounding: float = 1.0  # multiplies how strongly the pre-period drives the outcome baseline
    effects: dict[str, dict[str, float]] = field(default_factory=lambda: DEFAULT_EFFECTS)
    interactions: dict[str, tuple[str, str, float]] = field(
        default_factory=lambda: DEFAULT_INTERACTIONS
    )

    def with_effect(self, target: str, action: str, beta: float) -> "SyntheticSpec":
        """A copy with one action's effect on one target changed."""
        effects = {t: dict(e) for t, e in self.effects.items()}
        effects[canonical_target(target)][action] = beta
        return replace(self, effects=effects)


def saturating(x: np.ndarray, scale: float) -> np.ndarray:
    """h(x) = scale * (1 - exp(-x / scale)): slope 1 at zero, tends to scale."""
    return scale * -np.expm1(-np.asarray(x, dtype=np.float64) / scale)


def expected_outcome_parts(
    actions: np.ndarray, pre_mean: np.ndarray, super_flag: np.ndarray, target: str, spec: SyntheticSpec
) -> tuple[np.ndarray, np.ndarray]:
    """The no-action baseline (N,) and the exact Shapley contributions (N, 8) of mu for one target."""
    target = canonical_target(target)
    floor, carry, bump = BASELINE[target]
    effects = spec.effects[target]
    h = np.column_stack([saturating(actions[:, k], SATURATION[a]) for k, a in enumerate(ACTIONS)])
    beta = np.array([effects[a] for a in ACTIONS])
    contrib = h * beta
    a_i, a_j, gamma = spec.interactions[target]
    i, j = ACTIONS.index(a_i), ACTIONS.index(a_j)
    joint = gamma * h[:, i] * h[:, j]
    contrib[:, i] += joint / 2
    contrib[:, j] += joint / 2
    # The floor covers the largest possible negative effect, so mu never goes below zero.
    negative = sum(-b * SATURATION[a] for a, b in effects.items() if b < 0)
    baseline = floor + negative + spec.confounding * carry * pre_mean + bump * super_flag
    return baseline, contrib


def generate(n_rows: int = 100_000, seed: int = 0, spec: SyntheticSpec | None = None) -> pd.DataFrame:
    """A synthetic (user, artist) table with every column of the data contract."""
    spec = replace(spec or SyntheticSpec(), n_rows=n_rows, seed=seed)
    rng = np.random.default_rng(seed)
    n = n_rows
    engagement = rng.standard_normal(n)
    rho = spec.action_correlation
    own = rng.standard_normal((n, len(ACTIVITIES)))
    spread = np.array([RATE_SPREAD[a] for a in ACTIVITIES])
    base = np.array([BASE_RATE[a] for a in ACTIVITIES])
    log_rate = np.log(base) + spread * (rho * engagement[:, None] + np.sqrt(1 - rho**2) * own)
    log_rate -= spread**2 / 2  # keep each activity's population mean near its base rate
    rate = np.exp(log_rate).astype(np.float32)

    def draw_period(scale: float = 1.0) -> np.ndarray:
        # Gamma-Poisson: zero-inflated, heavy-tailed counts around each user's own rate.
        burst = rng.gamma(2.0, 0.5, size=(n, len(ACTIVITIES))).astype(np.float32)
        return rng.poisson(rate * burst * scale).astype(np.int64)

    cols: dict[str, np.ndarray] = {
        "user_id": np.char.add("u", np.arange(n).astype(str)),
        "artist_gid": np.char.add("a", rng.integers(0, 500, n).astype(str)),
    }
    light = engagement < -0.4
    super_ = engagement > 1.0
    cols["light_listener"] = light.astype(np.int64)
    cols["moderate_listener"] = (~light & ~super_).astype(np.int64)
    cols["super_listener"] = super_.astype(np.int64)
    periods = {p: draw_period() for p in PRE_PERIODS + ("treatment_period",)}
    history = draw_period(3.0)
    running = history.copy()
    for p, counts in periods.items():
        running = running + counts
        for k, a in enumerate(ACTIVITIES):
            cols[f"{a}_{p}"] = counts[:, k]
        for k, a in enumerate(ACTIVITIES):
            if a in CUMULATIVE_ACTIVITIES or (a == "shares" and p in PRE_PERIODS):
                cols[f"cum{a}_{p}"] = running[:, k]

    actions = periods["treatment_period"].astype(np.float64)
    pre_mean = np.mean([periods[p] for p in PRE_PERIODS], axis=0)  # (n, 8)
    first_half = draw_period()
    second_half = draw_period()
    for k, a in enumerate(ACTIVITIES):
        target = f"{a}_following_four_weeks"
        if target in TARGETS:
            baseline, contrib = expected_outcome_parts(
                actions, pre_mean[:, k], super_.astype(np.float64), target, spec
            )
            four = rng.poisson(baseline + contrib.sum(axis=1))
            two = rng.binomial(four, 0.5)
        else:
            two = first_half[:, k]
            four = two + second_half[:, k]
        cols[f"{a}_following_two_weeks"] = two.astype(np.int64)
        cols[f"{a}_following_four_weeks"] = four.astype(np.int64)
    df = pd.DataFrame({c: cols[c] for c in KNOWN_COLUMNS})
    return df


def true_contributions(df: pd.DataFrame, target: str, spec: SyntheticSpec | None = None) -> pd.DataFrame:
    """Per-row true contribution of each action to the expected target, plus `baseline` and `expected`."""
    spec = spec or SyntheticSpec()
    target = canonical_target(target)
    activity = target[: -len("_following_four_weeks")]
    pre_mean = df[[f"{activity}_{p}" for p in PRE_PERIODS]].to_numpy(np.float64).mean(axis=1)
    baseline, contrib = expected_outcome_parts(
        df[list(ACTIONS)].to_numpy(np.float64),
        pre_mean,
        df["super_listener"].to_numpy(np.float64),
        target,
        spec,
    )
    out = pd.DataFrame(contrib, index=df.index, columns=list(ACTIONS))
    out["baseline"] = baseline
    out["expected"] = baseline + contrib.sum(axis=1)
    return out
