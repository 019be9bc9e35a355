"""The data contract: column names of the (user, artist) table, in the study's own spelling."""

from __future__ import annotations

ACTIVITIES: tuple[str, ...] = (
    "saves",
    "follows",
    "playlists",
    "tickets",
    "merch",
    "shares",
    "streams_active_streams",
    "streams_programmed_streams",
)
"""The eight activities, in the reference notebook's order."""

PRE_PERIODS: tuple[str, ...] = ("pre_period_1", "pre_period_2", "pre_period_3")
PERIODS: tuple[str, ...] = PRE_PERIODS + (
    "treatment_period",
    "following_two_weeks",
    "following_four_weeks",
)

ACTIONS: tuple[str, ...] = tuple(f"{a}_treatment_period" for a in ACTIVITIES)
"""The eight action columns, in the reference order (the steps of the fixed-order sequence)."""

ACTION_LABELS: dict[str, str] = {
    "saves_treatment_period": "save",
    "follows_treatment_period": "follow",
    "playlists_treatment_period": "playlist add",
    "tickets_treatment_period": "ticket",
    "merch_treatment_period": "merch purchase",
    "shares_treatment_period": "share",
    "streams_active_streams_treatment_period": "active stream",
    "streams_programmed_streams_treatment_period": "programmed stream",
}
"""Plain-language singular name of each action, for reports."""

TARGET_ACTIVITIES: tuple[str, ...] = (
    "shares",
    "merch",
    "tickets",
    "streams_active_streams",
    "streams_programmed_streams",
)
TARGETS: tuple[str, ...] = tuple(f"{a}_following_four_weeks" for a in TARGET_ACTIVITIES)
"""The five reward targets."""

DEFAULT_TARGET = "streams_active_streams_following_four_weeks"

TARGET_ALIASES: dict[str, str] = {"ticket_following_four_weeks": "tickets_following_four_weeks"}
"""Other spellings accepted for a target (the reference notebook misspells tickets)."""

TARGET_LABELS: dict[str, str] = {
    "shares_following_four_weeks": "shares in the following four weeks",
    "merch_following_four_weeks": "merch purchases in the following four weeks",
    "tickets_following_four_weeks": "tickets in the following four weeks",
    "streams_active_streams_following_four_weeks": "active streams in the following four weeks",
    "streams_programmed_streams_following_four_weeks": "programmed streams in the following four weeks",
}

ID_COLUMNS: tuple[str, ...] = ("user_id", "artist_gid")
SEGMENT_COLUMNS: tuple[str, ...] = ("light_listener", "moderate_listener", "super_listener")

CUMULATIVE_ACTIVITIES: tuple[str, ...] = ("saves", "follows", "playlists", "tickets", "merch")
"""Activities with cumulative columns in every period up to the treatment period (shares: pre-periods only)."""

PRE_PERIOD_COLUMNS: tuple[str, ...] = tuple(f"{a}_{p}" for p in PRE_PERIODS for a in ACTIVITIES)
"""Pre-period activity counts: the step-0 state's behavioural part."""

STATE_COLUMNS: tuple[str, ...] = SEGMENT_COLUMNS + PRE_PERIOD_COLUMNS
"""Columns that make the step-0 state, where the table has them."""


def activity_columns() -> list[str]:
    """All per-period activity count columns, period by period."""
    return [f"{a}_{p}" for p in PERIODS for a in ACTIVITIES]


def cumulative_columns() -> list[str]:
    """All cumulative count columns the study's table carries."""
    cols: list[str] = []
    for p in PRE_PERIODS + ("treatment_period",):
        acts = CUMULATIVE_ACTIVITIES + (("shares",) if p in PRE_PERIODS else ())
        cols += [f"cum{a}_{p}" for a in acts]
    return cols


KNOWN_COLUMNS: tuple[str, ...] = (
    ID_COLUMNS + SEGMENT_COLUMNS + tuple(activity_columns()) + tuple(cumulative_columns())
)
"""Every column of the data contract (the order of the synthetic table)."""


def canonical_target(name: str) -> str:
    """Return the canonical target name for a target or its alias, or raise ValueError."""
    name = TARGET_ALIASES.get(name, name)
    if name not in TARGETS:
        raise ValueError(
            f"unknown reward target {name!r}; choose one of: {', '.join(TARGETS)}"
        )
    return name


def short_name(column: str) -> str:
    """A compact label for an action or target column, for plot axes."""
    for suffix in ("_treatment_period", "_following_four_weeks"):
        if column.endswith(suffix):
            column = column[: -len(suffix)]
    return column.replace("streams_", "").replace("_streams", "")
