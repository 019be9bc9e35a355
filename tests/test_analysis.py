"""Summaries of contributions on small hand-made tables with answers worked out by hand."""

import numpy as np
import pandas as pd

from fandom_lib.analysis import agreement, binned_means, sample_table, truth_recovery, worth_table
from fandom_lib.schema import ACTIONS


def test_binned_means_bins_counts_and_gives_a_normal_interval():
    counts = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 3, 4, 3, 4, 3, 7]
    values = [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 9]
    b = binned_means(counts, values, min_rows=5)
    assert list(b["label"]) == ["0", "1", "3-4"]  # the bin 5-9 holds one row: left out
    assert list(b["rows"]) == [5, 5, 5]
    assert list(b["mean"]) == [0, 3, 6]
    # sd of 1..5 is sqrt(2.5): half-width 1.96 * sqrt(2.5 / 5)
    assert np.isclose(b.loc[1, "high"] - b.loc[1, "mean"], 1.96 * np.sqrt(0.5))
    assert b.loc[2, "low"] == b.loc[2, "high"] == 6


def table_and_contrib():
    table = pd.DataFrame(0.0, index=[5, 6, 7, 8], columns=list(ACTIONS))
    table["saves_treatment_period"] = [0, 1, 1, 2]
    contrib = pd.DataFrame(0.0, index=[5, 6, 7, 8], columns=list(ACTIONS))
    contrib["saves_treatment_period"] = [0.0, 2.0, 4.0, 6.0]
    return table, contrib


def test_worth_table_per_action_and_in_words():
    table, contrib = table_and_contrib()
    w = worth_table(table, contrib, "active streams")
    s = w.loc["saves_treatment_period"]
    assert s["fans who did it"] == 0.75
    assert s["worth per action"] == 12 / 4  # total credit 12 over 4 saves
    assert s["worth of the first one"] == 3.0  # fans with exactly one save: (2 + 4) / 2
    assert s["mean contribution (all fans)"] == 3.0
    assert s["in words"] == "one more save is worth about +3 active streams"
    assert w.loc["merch_treatment_period", "in words"].startswith("no fan did")


def test_sample_table_puts_counts_and_rewards_side_by_side():
    table, contrib = table_and_contrib()
    contrib["baseline"], contrib["prediction"], contrib["return"] = 1.0, [1, 3, 5, 7], [2, 2, 6, 6]
    t = sample_table(table, contrib, pd.Index([8]))
    assert t.loc["save", ("row 8", "count")] == 2
    assert t.loc["save", ("row 8", "reward")] == 6
    assert t.loc["final prediction", ("row 8", "reward")] == 7
    assert t.loc["actual outcome", ("row 8", "reward")] == 6


def test_truth_recovery_correlation_mean_error_and_sign():
    idx = pd.RangeIndex(4)
    truth = pd.DataFrame(0.0, index=idx, columns=list(ACTIONS))
    est = truth.copy()
    truth["saves_treatment_period"] = [0, 1, 2, 3]
    est["saves_treatment_period"] = [0, 2, 4, 6]  # perfectly correlated, twice as large
    truth["follows_treatment_period"] = [-1, -1, -1, -1]
    est["follows_treatment_period"] = [1, 1, 1, 2]  # wrong sign
    est["shares_treatment_period"] = [0.01, 0, 0, 0]  # zero truth, tiny estimate: counts as right
    r = truth_recovery(est, truth)
    assert np.isclose(r.loc["saves_treatment_period", "correlation"], 1.0)
    assert r.loc["saves_treatment_period", "mean error"] == 1.5
    assert bool(r.loc["saves_treatment_period", "sign right"])
    assert not bool(r.loc["follows_treatment_period", "sign right"])
    assert bool(r.loc["shares_treatment_period", "sign right"])
    assert np.isnan(r.loc["merch_treatment_period", "correlation"])


def test_agreement_of_identical_estimates():
    _, contrib = table_and_contrib()
    a = agreement(contrib, contrib.copy())
    assert a.loc["saves_treatment_period", "correlation"] == 1.0
    assert a["mean absolute difference"].sum() == 0


def test_index_sentences_say_the_gate_in_one_line_and_the_truth_check():
    from fandom_lib.pipeline import index_sentences

    truth = "Against the known truth of the synthetic data: per-fan correlation 0.97 to 1.00 ..."
    passed = {"quality_gate": {"rse": 0.074, "passed": True}, "sentences": ["long gate message", "other", truth]}
    assert index_sentences(passed) == [
        "The model explains 93% of the outcome's variation on held-out fans: credit can be trusted.", truth]
    failed = {"quality_gate": {"rse": 0.792, "passed": False}, "sentences": ["long gate message"]}
    assert index_sentences(failed) == [
        "WARNING: the model explains only 21% of the outcome's variation on held-out fans; treat the figures "
        "as indicative (see the report)."]
    assert index_sentences(None) == [] and index_sentences({"quality_gate": {"rse": float("nan")}}) == []
