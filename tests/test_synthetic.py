"""The synthetic default: the data contract's columns, realistic shapes, seeds, and a spec that copies."""

from __future__ import annotations

import numpy as np
import pytest

from fandom_lib.schema import ACTIONS, DEFAULT_TARGET, KNOWN_COLUMNS, TARGETS
from fandom_lib.synthetic import DEFAULT_EFFECTS, SyntheticSpec, generate, true_contributions


@pytest.fixture(scope="module")
def table():
    return generate(20_000, seed=0)


def test_every_contract_column_in_order(table):
    assert list(table.columns) == list(KNOWN_COLUMNS)


def test_counts_are_non_negative_integers_mostly_zero_and_heavy_tailed(table):
    counts = table[list(ACTIONS) + list(TARGETS)]
    assert all(np.issubdtype(t, np.integer) for t in counts.dtypes)
    assert (counts >= 0).all().all()
    share_zero = (table[list(ACTIONS)] == 0).mean()
    assert (share_zero > 0.25).all()  # even streams: over a quarter of fans do none
    for rare in ("tickets_treatment_period", "merch_treatment_period"):
        assert 0.02 < (table[rare] > 0).mean() < 0.08
    streams = table["streams_active_streams_treatment_period"]
    assert streams.max() > 20 * streams.mean()  # a few fans stream far more than the typical one


def test_segments_are_one_hot(table):
    seg = table[["light_listener", "moderate_listener", "super_listener"]]
    assert (seg.sum(axis=1) == 1).all()


def test_actions_are_correlated_and_confounded_through_the_pre_period(table):
    logs = np.log1p(table[list(ACTIONS)])
    assert logs.corr().to_numpy()[np.triu_indices(8, 1)].min() > 0.03  # all positively correlated
    pre = np.log1p(table["streams_active_streams_pre_period_1"])
    assert np.corrcoef(pre, logs["streams_active_streams_treatment_period"])[0, 1] > 0.5


def test_same_seed_same_table_other_seed_other_table():
    a, b, c = generate(500, seed=3), generate(500, seed=3), generate(500, seed=4)
    assert a.equals(b) and not a.equals(c)


def test_with_effect_copies_and_changes_only_one_effect():
    spec = SyntheticSpec().with_effect(DEFAULT_TARGET, ACTIONS[0], 0.0)
    assert spec.effects[DEFAULT_TARGET][ACTIONS[0]] == 0.0
    assert DEFAULT_EFFECTS[DEFAULT_TARGET][ACTIONS[0]] == 3.0  # the default is untouched
    assert spec.effects[DEFAULT_TARGET][ACTIONS[1]] == DEFAULT_EFFECTS[DEFAULT_TARGET][ACTIONS[1]]


def test_outcome_mean_follows_the_expected_value(table):
    truth = true_contributions(table, DEFAULT_TARGET)
    y = table[DEFAULT_TARGET]
    assert abs(y.mean() - truth["expected"].mean()) < 0.02 * y.mean()
    assert (truth["expected"] >= 0).all()


def test_the_target_alias_is_accepted(table):
    a = true_contributions(table, "ticket_following_four_weeks")
    b = true_contributions(table, "tickets_following_four_weeks")
    assert a.equals(b)
