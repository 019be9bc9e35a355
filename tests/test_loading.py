"""Tests of fandom_lib.loading: every bad input either stops with a clear DataError or is repaired and logged."""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fandom_lib import loading
from fandom_lib.loading import DataError, RepairLog, load_table, read_table, validate_table
from fandom_lib.schema import (
    ACTIONS,
    PRE_PERIOD_COLUMNS,
    SEGMENT_COLUMNS,
    STATE_COLUMNS,
    TARGETS,
)

from .conftest import CASES

TARGET = "streams_active_streams_following_four_weeks"
TICKETS = "tickets_following_four_weeks"


def make_table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A clean contract table of n rows: ids, segment flags, pre-period counts, actions, targets, one cumulative column."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "user_id": np.arange(1000, 1000 + n, dtype="int64"),
        "artist_gid": np.array([f"a{i % 7:04d}" for i in range(n)]),
    }
    seg = rng.integers(0, 3, n)
    for k, col in enumerate(SEGMENT_COLUMNS):
        data[col] = (seg == k).astype("int64")
    for col in PRE_PERIOD_COLUMNS + ACTIONS + TARGETS:
        data[col] = rng.poisson(2.0, n).astype("int64")
    data["cumsaves_treatment_period"] = rng.poisson(5.0, n).astype("int64")
    return pd.DataFrame(data)


def entries_for(log: RepairLog, column: str | None) -> list[dict]:
    """The log entries about one column."""
    return [e for e in log.entries if e["column"] == column]


# ----------------------------------------------------------------------------- RepairLog


def test_repair_log_api(caplog: pytest.LogCaptureFixture) -> None:
    """add records and logs; to_records/to_frame/rows_dropped report the entries."""
    log = RepairLog("f.csv")
    assert log.to_frame().columns.tolist() == ["problem", "column", "rows", "action"]
    assert len(log.to_frame()) == 0 and log.rows_dropped == 0
    with caplog.at_level(logging.WARNING, logger="fandom_lib"):
        log.add("missing value", "saves_treatment_period", 3, loading.DROPPED)
        log.add("non-integer counts", "saves_treatment_period", 4, "rounded to the nearest integer")
    assert log.to_records() == [
        {"problem": "missing value", "column": "saves_treatment_period", "rows": 3, "action": "dropped the rows"},
        {"problem": "non-integer counts", "column": "saves_treatment_period", "rows": 4,
         "action": "rounded to the nearest integer"},
    ]
    assert log.rows_dropped == 3
    assert log.to_frame()["rows"].tolist() == [3, 4]
    assert len(caplog.records) == 2 and "f.csv" in caplog.records[0].getMessage()
    assert caplog.records[0].name == "fandom_lib"


# ----------------------------------------------------------------------------- validate: clean input


def test_clean_table_passes_unchanged() -> None:
    """A clean table: no entries, same rows and labels, numeric columns float64, others untouched."""
    df = make_table()
    df.index = df.index + 100
    out, log = validate_table(df, TARGET, "clean")
    assert log.entries == [] and log.rows_dropped == 0
    assert out.index.tolist() == list(range(100, 160))
    assert out.columns.tolist() == df.columns.tolist()
    for col in ACTIONS + (TARGET,) + STATE_COLUMNS:
        assert out[col].dtype == np.float64
        np.testing.assert_array_equal(out[col].to_numpy(), df[col].to_numpy())
    assert out["cumsaves_treatment_period"].dtype == np.int64
    assert out[TICKETS].dtype == np.int64  # other targets: kept as they are
    assert out["artist_gid"].tolist() == df["artist_gid"].tolist()


def test_validate_does_not_modify_input() -> None:
    """The caller's frame is left as it was."""
    df = make_table()
    df.loc[3, "saves_treatment_period"] = np.nan
    before = df.copy()
    validate_table(df, TARGET)
    pd.testing.assert_frame_equal(df, before)


# ----------------------------------------------------------------------------- validate: dropped rows


def test_nan_and_negative_actions_dropped_with_exact_counts() -> None:
    """60 rows, 3 NaN actions and 2 negative counts: 55 rows out, entries of 3 and 2, the planted labels gone."""
    df = make_table()
    df.index = [f"r{i}" for i in range(60)]
    df.loc[["r3", "r17", "r42"], "saves_treatment_period"] = np.nan
    df.loc[["r5", "r50"], "merch_treatment_period"] = -2
    out, log = validate_table(df, TARGET)
    assert len(out) == 55
    dropped = sorted(set(df.index) - set(out.index))
    assert dropped == ["r17", "r3", "r42", "r5", "r50"]
    assert out.index.tolist() == [x for x in df.index if x not in dropped]
    (saves,) = entries_for(log, "saves_treatment_period")
    (merch,) = entries_for(log, "merch_treatment_period")
    assert saves["rows"] == 3 and saves["problem"] == "missing value in rows r3, r17, r42"
    assert saves["action"] == "dropped the rows"
    assert merch["rows"] == 2 and merch["problem"] == "negative count in rows r5, r50"
    assert log.rows_dropped == 5


def test_overlapping_problems_counted_once() -> None:
    """A row bad in two columns is dropped once and counted under its first reason."""
    df = make_table()
    df.loc[4, ["saves_treatment_period", "follows_treatment_period"]] = [np.nan, -1]
    df.loc[9, "follows_treatment_period"] = -1
    out, log = validate_table(df, TARGET)
    assert len(out) == 58 and log.rows_dropped == 2
    assert [e["rows"] for e in entries_for(log, "saves_treatment_period")] == [1]
    assert [e["rows"] for e in entries_for(log, "follows_treatment_period")] == [1]


def test_missing_and_infinite_target_and_inf_actions_dropped() -> None:
    """NaN target, +inf target and -inf action rows are dropped and counted."""
    df = make_table().astype({TARGET: "float64", "shares_treatment_period": "float64"})
    df.loc[[1, 2], TARGET] = np.nan
    df.loc[7, TARGET] = np.inf
    df.loc[8, "shares_treatment_period"] = -np.inf
    out, log = validate_table(df, TARGET)
    assert sorted(set(df.index) - set(out.index)) == [1, 2, 7, 8]
    assert [(e["problem"], e["rows"]) for e in entries_for(log, TARGET)] == [
        ("missing value in rows 1, 2", 2),
        ("infinite value in row 7", 1),
    ]
    assert [(e["problem"], e["rows"]) for e in entries_for(log, "shares_treatment_period")] == [
        ("infinite value in row 8", 1)
    ]
    assert log.rows_dropped == 4


def test_duplicate_pairs_keep_first() -> None:
    """Repeated (user_id, artist_gid) pairs: first occurrence kept, later ones dropped and counted."""
    df = make_table()
    df.loc[[10, 20], ["user_id", "artist_gid"]] = df.loc[[2, 2], ["user_id", "artist_gid"]].to_numpy()
    df.loc[30, ["user_id", "artist_gid"]] = df.loc[5, ["user_id", "artist_gid"]].to_numpy()
    out, log = validate_table(df, TARGET)
    assert sorted(set(df.index) - set(out.index)) == [10, 20, 30]
    assert 2 in out.index and 5 in out.index
    (dup,) = entries_for(log, "user_id, artist_gid")
    assert dup["rows"] == 3 and dup["action"].startswith("dropped the rows")
    assert log.rows_dropped == 3


def test_duplicates_ignored_without_both_ids() -> None:
    """With only one id column there is no pair to deduplicate."""
    df = make_table().drop(columns="artist_gid")
    df["user_id"] = 1
    out, log = validate_table(df, TARGET)
    assert len(out) == 60 and log.entries == []


# ----------------------------------------------------------------------------- validate: value repairs


def test_text_counts_parsed_and_non_numeric_dropped() -> None:
    """'1,204' and ' 7 ' are parsed (counted); 'abc' is treated as missing, then its row is dropped."""
    df = make_table()
    col = "streams_active_streams_treatment_period"
    df[col] = df[col].astype(str).astype(object)
    df.loc[[0, 7], col] = "1,204"
    df.loc[11, col] = " 7 "
    df.loc[12, col] = "abc"
    df.loc[13, col] = ""  # blank: missing, not 'non-numeric'
    out, log = validate_table(df, TARGET)
    assert out.loc[[0, 7, 11], col].tolist() == [1204.0, 1204.0, 7.0]
    assert out[col].dtype == np.float64
    assert sorted(set(df.index) - set(out.index)) == [12, 13]
    assert [(e["problem"], e["rows"], e["action"]) for e in entries_for(log, col)] == [
        ("numbers written as text with thousands separators or spaces in rows 0, 7, 11", 3, "parsed as numbers"),
        ("non-numeric values (e.g. 'abc') in row 12", 1, "treated as missing"),
        ("missing value in rows 12, 13", 2, "dropped the rows"),
    ]
    assert log.rows_dropped == 2


def test_ambiguous_comma_is_not_a_thousands_separator() -> None:
    """'2,5' (a decimal comma?) is not silently read as 25: it is treated as missing."""
    df = make_table()
    df["saves_treatment_period"] = df["saves_treatment_period"].astype(object)
    df.loc[6, "saves_treatment_period"] = "2,5"
    out, log = validate_table(df, TARGET)
    assert 6 not in out.index
    assert entries_for(log, "saves_treatment_period")[0]["problem"].startswith("non-numeric values (e.g. '2,5')")


def test_non_integer_counts_rounded() -> None:
    """2.5 -> 3, 0.4 -> 0, 7.6 -> 8 in an action; 1.5 -> 2 in the target; counted per column."""
    df = make_table().astype({"playlists_treatment_period": "float64", TARGET: "float64"})
    df.loc[[1, 2, 3], "playlists_treatment_period"] = [2.5, 0.4, 7.6]
    df.loc[4, TARGET] = 1.5
    out, log = validate_table(df, TARGET)
    assert len(out) == 60
    assert out.loc[[1, 2, 3], "playlists_treatment_period"].tolist() == [3.0, 0.0, 8.0]
    assert out.loc[4, TARGET] == 2.0
    (e,) = entries_for(log, "playlists_treatment_period")
    assert (e["rows"], e["action"]) == (3, "rounded to the nearest integer")
    assert [e["rows"] for e in entries_for(log, TARGET)] == [1]
    assert log.rows_dropped == 0


def test_state_columns_filled_not_dropped() -> None:
    """NaN, negative and inf in optional state columns become 0 (counted); fractions rounded; rows kept."""
    df = make_table().astype({"saves_pre_period_1": "float64", "light_listener": "float64"})
    df.loc[[2, 3], "saves_pre_period_1"] = np.nan
    df.loc[4, "saves_pre_period_1"] = -3
    df.loc[5, "saves_pre_period_1"] = np.inf
    df.loc[6, "saves_pre_period_1"] = 1.5
    df.loc[7, "light_listener"] = np.nan
    df.loc[8, "light_listener"] = 2
    out, log = validate_table(df, TARGET)
    assert len(out) == 60 and log.rows_dropped == 0
    assert out.loc[[2, 3, 4, 5, 6], "saves_pre_period_1"].tolist() == [0.0, 0.0, 0.0, 0.0, 2.0]
    assert out.loc[[7, 8], "light_listener"].tolist() == [0.0, 0.0]
    assert [(e["problem"], e["rows"], e["action"]) for e in entries_for(log, "saves_pre_period_1")] == [
        ("missing value in rows 2, 3", 2, "filled with 0"),
        ("infinite value in row 5", 1, "set to 0"),
        ("negative count in row 4", 1, "set to 0"),
        ("non-integer counts (e.g. 1.5) in row 6", 1, "rounded to the nearest integer"),
    ]
    assert [(e["problem"], e["rows"]) for e in entries_for(log, "light_listener")] == [
        ("missing value in row 7", 1),
        ("flag value other than 0/1 in row 8", 1),
    ]


def test_boolean_segment_flags_become_0_1() -> None:
    """Boolean flags (and 'True'/'False' text) turn into 1.0/0.0, logged."""
    df = make_table()
    df["light_listener"] = df["light_listener"].astype(bool)
    df["super_listener"] = df["super_listener"].map({0: "False", 1: "True"})
    out, log = validate_table(df, TARGET)
    assert out["light_listener"].dtype == np.float64
    np.testing.assert_array_equal(out["light_listener"].to_numpy(), make_table()["light_listener"].to_numpy())
    np.testing.assert_array_equal(out["super_listener"].to_numpy(), make_table()["super_listener"].to_numpy())
    assert [(e["problem"], e["rows"]) for e in entries_for(log, "light_listener")] == [("True/False values", 60)]
    assert entries_for(log, "super_listener") == []


def test_state_columns_are_optional() -> None:
    """A table with only the actions and the target is fine."""
    df = make_table()[list(ACTIONS) + [TARGET]]
    out, log = validate_table(df, TARGET)
    assert out.shape == (60, 9) and log.entries == []


def test_nullable_and_categorical_numbers() -> None:
    """Nullable Int64 with <NA> and numeric categoricals are read as numbers."""
    df = make_table()
    df["saves_treatment_period"] = df["saves_treatment_period"].astype("Int64")
    df.loc[0, "saves_treatment_period"] = pd.NA
    df["follows_treatment_period"] = df["follows_treatment_period"].astype("category")
    out, log = validate_table(df, TARGET)
    assert 0 not in out.index and len(out) == 59
    assert out["follows_treatment_period"].dtype == np.float64
    np.testing.assert_array_equal(out["follows_treatment_period"], make_table()["follows_treatment_period"][1:])


# ----------------------------------------------------------------------------- validate: columns


def test_column_names_case_and_spaces_renamed() -> None:
    """'User_id' and ' Saves_Treatment_Period ' are renamed to the contract's spelling, logged."""
    df = make_table().rename(columns={"user_id": "User_id", "saves_treatment_period": " Saves_Treatment_Period "})
    out, log = validate_table(df, TARGET)
    assert "user_id" in out.columns and "saves_treatment_period" in out.columns
    assert out.columns.tolist() == make_table().columns.tolist()
    assert [(e["problem"], e["action"]) for e in entries_for(log, "user_id")] == [
        ("column name 'User_id' differs from the contract in case or spaces", "renamed to 'user_id'")
    ]
    assert len(entries_for(log, "saves_treatment_period")) == 1


def test_target_alias_argument_and_column() -> None:
    """The misspelled tickets target is accepted as argument and as column; output uses the canonical name."""
    df = make_table().rename(columns={TICKETS: "ticket_following_four_weeks"})
    out, log = validate_table(df, "ticket_following_four_weeks")
    assert TICKETS in out.columns and "ticket_following_four_weeks" not in out.columns
    np.testing.assert_array_equal(out[TICKETS], make_table()[TICKETS])
    assert [e["action"] for e in entries_for(log, TICKETS)] == [f"renamed to '{TICKETS}'"]
    out2, _ = validate_table(make_table(), " Ticket_following_four_weeks ")
    assert out2[TICKETS].dtype == np.float64


def test_alias_column_beside_canonical_is_ignored() -> None:
    """If both spellings are present the canonical column is used and the alias listed as ignored."""
    df = make_table()
    df["ticket_following_four_weeks"] = 99
    out, log = validate_table(df, TICKETS)
    assert out[TICKETS].tolist() == make_table()[TICKETS].astype(float).tolist()
    (e,) = entries_for(log, None)
    assert "'ticket_following_four_weeks'" in e["problem"]


def test_unknown_target_lists_valid_ones() -> None:
    """An unknown target name stops with the list of targets."""
    with pytest.raises(DataError) as err:
        validate_table(make_table(), "streams_following_four_weeks", "t.csv")
    msg = str(err.value)
    assert msg.startswith("t.csv: unknown reward target 'streams_following_four_weeks'")
    assert all(t in msg for t in TARGETS) and "ticket_following_four_weeks" in msg


def test_missing_columns_named_with_suggestion() -> None:
    """Every missing required column is named; a similar unrecognised column is suggested for renaming."""
    df = make_table().rename(columns={"follows_treatment_period": "follow_treatment_period"}).drop(columns=[TARGET])
    with pytest.raises(DataError) as err:
        validate_table(df, TARGET, "in.parquet")
    msg = str(err.value)
    assert msg.startswith("in.parquet: missing required column(s): 'follows_treatment_period'")
    assert "nearest unrecognised column: 'follow_treatment_period'" in msg
    assert f"'{TARGET}'" in msg and "Rename" in msg
    assert "Targets this table has:" in msg


def test_missing_column_without_candidate() -> None:
    """A missing action with no similar unrecognised column says so."""
    df = make_table().drop(columns=["merch_treatment_period"])
    df["comment"] = "x"
    with pytest.raises(DataError, match=r"'merch_treatment_period' \(no column outside the contract has a similar"):
        validate_table(df, TARGET)


def test_unknown_columns_dropped_in_one_entry() -> None:
    """Columns outside the contract are left out and listed in one entry with rows=0."""
    df = make_table()
    df["date"] = pd.Timestamp("2023-06-05")
    df["notes"] = "x"
    out, log = validate_table(df, TARGET)
    assert "date" not in out.columns and "notes" not in out.columns
    assert log.to_records() == [
        {"problem": "2 column(s) not in the data contract: 'date', 'notes'", "column": None, "rows": 0,
         "action": "ignored (left out of the output)"}
    ]


def test_doubled_columns_stop() -> None:
    """Two columns meaning the same contract column stop; so does a pandas-mangled copy 'x.1'."""
    df = make_table()
    df["Saves_treatment_period"] = 1
    with pytest.raises(DataError, match="'saves_treatment_period' and 'Saves_treatment_period' both stand for"):
        validate_table(df, TARGET, "d.csv")
    df = make_table()
    df["saves_treatment_period.1"] = 1
    with pytest.raises(DataError, match="appears more than once"):
        validate_table(df, TARGET, "d.csv")


def test_multiindex_columns_stop() -> None:
    """Several header rows stop with advice to flatten them."""
    df = make_table()
    df.columns = pd.MultiIndex.from_arrays([df.columns, df.columns])
    with pytest.raises(DataError, match="header rows"):
        validate_table(df, TARGET)


def test_ids_in_index_copied_to_columns_and_the_index_kept() -> None:
    """A (user_id, artist_gid) MultiIndex or a named user_id index is copied to columns; the rows keep their
    labels, so the output (contributions.parquet) joins back to the user's table by its own index."""
    base = make_table()
    df = base.set_index(["user_id", "artist_gid"])
    df.loc[df.index[4], "saves_treatment_period"] = -1
    out, log = validate_table(df, TARGET)
    assert out.columns.tolist()[:2] == ["user_id", "artist_gid"]
    assert out.index.tolist() == [k for i, k in enumerate(df.index) if i != 4]
    assert out["user_id"].tolist() == [u for i, u in enumerate(base["user_id"]) if i != 4]
    assert log.entries[0]["problem"] == "ids held in the row index (user_id, artist_gid)"
    assert log.entries[0]["action"] == "copied to columns user_id, artist_gid; the rows keep their index"
    df = base.drop(columns="user_id").set_index(base["user_id"].rename("User_ID"))
    out, _ = validate_table(df, TARGET)
    assert out["user_id"].tolist() == base["user_id"].tolist()
    assert out.index.tolist() == base["user_id"].tolist() and out.index.name == "User_ID"


def test_repeated_index_labels_become_positions() -> None:
    """An index whose labels repeat cannot label the output rows: rows are numbered by position (logged), and
    ids held in it become columns, so that duplicated (user, artist) pairs are still found."""
    base = make_table()
    df = base.copy()
    df.index = [i // 2 for i in range(60)]
    out, log = validate_table(df, TARGET)
    assert out.index.tolist() == list(range(60))
    assert log.entries[0] == {
        "problem": "the row index repeats labels: 60 rows share a label with another row, e.g. 0",
        "column": None, "rows": 60, "action": "rows are labelled by their position in the file, 0..59"}
    df = base.set_index(["user_id", "artist_gid"])
    df.index = df.index[[0, 0] + list(range(2, 60))]  # row 1 repeats row 0's (user, artist) pair
    out, log = validate_table(df, TARGET)
    assert out.index.tolist() == [i for i in range(60) if i != 1]
    assert out["user_id"].tolist()[:2] == [base["user_id"][0], base["user_id"][2]]
    assert log.entries[0]["action"].endswith("; the index levels moved to column(s) user_id, artist_gid")
    assert log.entries[1]["problem"] == "duplicated (user_id, artist_gid) pair in row 1" and log.rows_dropped == 1
    df.index = df.index.set_names(["user_id", "artist_id"])  # a level outside the contract: a column, reported
    out, log = validate_table(df, TARGET)
    assert log.entries[0]["action"].endswith("; the index levels moved to column(s) user_id, artist_id")
    assert any("'artist_id'" in e["problem"] and "not in the data contract" in e["problem"] for e in log.entries)


def test_implausibly_large_counts_dropped_or_zeroed() -> None:
    """A count above a billion is corrupt data: the row is dropped (an action or the target), or the state
    value set to 0, each logged; the model never sees it."""
    df = make_table()
    for col in ("merch_treatment_period", TARGET, "saves_pre_period_1"):
        df[col] = df[col].astype(float)
    df.loc[3, "merch_treatment_period"] = 1e300
    df.loc[7, TARGET] = 2e9
    df.loc[9, "saves_pre_period_1"] = 5e12
    out, log = validate_table(df, TARGET)
    assert 3 not in out.index and 7 not in out.index and len(out) == 58
    assert out.loc[9, "saves_pre_period_1"] == 0
    problems = {(e["column"], e["problem"], e["action"]) for e in log.entries}
    assert ("merch_treatment_period", "count above 1,000,000,000 (not a real count) in row 3", "dropped the rows") in problems
    assert (TARGET, "count above 1,000,000,000 (not a real count) in row 7", "dropped the rows") in problems
    assert ("saves_pre_period_1", "count above 1,000,000,000 (not a real count) in row 9", "set to 0") in problems


def test_plain_named_index_kept() -> None:
    """An index that is not ids keeps its labels."""
    df = make_table()
    df.index = pd.Index(range(500, 560), name="row")
    out, log = validate_table(df, TARGET)
    assert out.index.tolist() == list(range(500, 560)) and log.entries == []


# ----------------------------------------------------------------------------- validate: stops after repairs


def test_too_few_rows_stop() -> None:
    """20 of 60 rows dropped -> 40 usable < 50: DataError with the counts and the reasons."""
    df = make_table()
    df.loc[:19, "saves_treatment_period"] = np.nan
    with pytest.raises(DataError) as err:
        validate_table(df, TARGET, "few.csv")
    msg = str(err.value)
    assert msg.startswith("few.csv: too few rows to train and validate: 40 usable of 60; need at least 50.")
    assert "20 for missing value in 'saves_treatment_period'" in msg and msg.endswith("Fix the input table, or give one with more rows.")
    out, _ = validate_table(df, TARGET, min_rows=40)
    assert len(out) == 40


def test_constant_target_stop() -> None:
    """A target with one value in every usable row stops."""
    df = make_table()
    df[TARGET] = 0
    with pytest.raises(DataError, match=r"c.csv: target column '.*' has the same value \(0\) in all 60 usable rows"):
        validate_table(df, TARGET, "c.csv")


def test_all_missing_target_stop() -> None:
    """A target with no numbers at all stops (not just 'too few rows')."""
    df = make_table()
    df[TARGET] = np.nan
    with pytest.raises(DataError, match=r"m.csv: target column '.*' has no usable numbers in any of its 60 rows"):
        validate_table(df, TARGET, "m.csv")
    df[TARGET] = "n/a"
    with pytest.raises(DataError, match="has no usable numbers"):
        validate_table(df, TARGET, "m.csv")


def test_not_a_frame_or_no_rows_stop() -> None:
    """A non-DataFrame or a frame with no rows stops."""
    with pytest.raises(DataError, match="expected a pandas DataFrame, got a dict"):
        validate_table({"a": [1]}, TARGET)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no rows"):
        validate_table(make_table().iloc[:0], TARGET)


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "name",
    ["t.pkl", "t.pickle", "t.parquet", "t.csv", "t.tsv", "t.txt", "t.pkl.gz", "t.csv.bz2", "t.csv.zip",
     "t.csv.xz", "t.parquet.gz", "T.CSV.GZ", "t.tsv.gz"],
)
def test_read_formats_round_trip(tmp_path: Path, name: str) -> None:
    """Every supported format, plain or compressed, reads back the same table with no notes."""
    df = make_table()
    path = tmp_path / name
    low = name.lower()
    if ".pkl" in low or ".pickle" in low:
        df.to_pickle(path)
    elif ".parquet" in low:
        raw = tmp_path / "raw.parquet"
        df.to_parquet(raw)
        data = raw.read_bytes()
        path.write_bytes(gzip.compress(data) if low.endswith(".gz") else data)
    else:
        sep = "\t" if (".tsv" in low or ".txt" in low) else ","
        comp = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}.get(path.suffix.lower())
        df.to_csv(path, sep=sep, index=False, compression=comp)
    got = read_table(path)
    assert got.attrs[loading.READ_NOTES_KEY] == []
    pd.testing.assert_frame_equal(got.reset_index(drop=True), df, check_dtype=False)


@pytest.mark.parametrize("sep,label", [(";", "semicolons"), ("\t", "tabs"), ("|", "pipes")])
def test_csv_other_delimiter_detected_and_logged(tmp_path: Path, sep: str, label: str) -> None:
    """A .csv separated by ;, tab or | is read correctly and the repair is noted and logged."""
    df = make_table()
    df.loc[3, "artist_gid"] = "a,b"  # a comma inside a value must not fool the detection
    path = tmp_path / "t.csv"
    df.to_csv(path, sep=sep, index=False)
    got = read_table(path)
    assert got.shape == df.shape
    assert got.attrs[loading.READ_NOTES_KEY] == [f"columns separated by {label}, not commas; read with {label}"]
    out, log = load_table(path, TARGET)
    assert len(out) == 60
    assert log.to_records()[0] == {"problem": f"columns separated by {label}, not commas; read with {label}",
                                   "column": None, "rows": 0, "action": "read the file accordingly"}


def test_csv_with_thousands_and_quotes(tmp_path: Path) -> None:
    """Quoted "1,204" values in a comma CSV are parsed by validate_table."""
    df = make_table()
    df["saves_treatment_period"] = df["saves_treatment_period"].astype(object)
    df.loc[[0, 1], "saves_treatment_period"] = "1,204"
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    out, log = load_table(path, TARGET)
    assert out.loc[[0, 1], "saves_treatment_period"].tolist() == [1204.0, 1204.0]
    assert [e["rows"] for e in entries_for(log, "saves_treatment_period")] == [2]


def test_latin1_text_noted(tmp_path: Path) -> None:
    """A CSV that is not UTF-8 is read as Latin-1 and noted."""
    df = make_table()
    df.loc[0, "artist_gid"] = "Björk"
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False, encoding="latin-1")
    got = read_table(path)
    assert got.loc[0, "artist_gid"] == "Björk"
    assert got.attrs[loading.READ_NOTES_KEY] == ["text is not UTF-8; read as Latin-1"]


def test_old_pickle_latin1_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When pandas cannot read a pickle, the latin1 Unpickler is used and that is noted."""
    path = tmp_path / "old.pkl"
    make_table().to_pickle(path)

    def fail(*args: object, **kwargs: object) -> None:
        """Stand-in for pd.read_pickle failing on an old pickle."""
        raise UnicodeDecodeError("ascii", b"\xe9", 0, 1, "ordinal not in range")

    monkeypatch.setattr(loading.pd, "read_pickle", fail)
    got = read_table(path)
    pd.testing.assert_frame_equal(got, make_table())
    assert got.attrs[loading.READ_NOTES_KEY] == [
        "old pickle that pandas could not read directly; read with encoding='latin1'"
    ]
    _, log = validate_table(got, TARGET)
    assert len(log.entries) == 1 and log.entries[0]["action"] == "read the file accordingly"


def test_missing_file(tmp_path: Path) -> None:
    """A path that does not exist stops and says so."""
    with pytest.raises(DataError, match=r"nope\.csv: the file does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="folder"):
        read_table(tmp_path)


@pytest.mark.parametrize("name", ["t.xlsx", "t.json", "table", "t.gz", "t.feather.bz2"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    """An unsupported extension stops and lists the supported types."""
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(DataError) as err:
        read_table(path)
    msg = str(err.value)
    assert "unsupported file type" in msg and ".parquet" in msg and ".csv" in msg and ".pkl" in msg


@pytest.mark.parametrize("name", ["t.csv", "t.pkl", "t.parquet", "t.tsv", "t.csv.gz"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    """A 0-byte file stops."""
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"the file is empty \(0 bytes\)"):
        read_table(path)


def test_empty_after_decompression(tmp_path: Path) -> None:
    """A compressed file holding nothing stops."""
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty once decompressed"):
        read_table(path)


def test_header_without_rows(tmp_path: Path) -> None:
    """A CSV or parquet with columns but no rows stops."""
    path = tmp_path / "t.csv"
    path.write_text(",".join(make_table().columns) + "\n")
    with pytest.raises(DataError, match=r"has a header \(43 columns\) but no rows"):
        read_table(path)
    make_table().iloc[:0].to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="but no rows"):
        read_table(tmp_path / "t.parquet")
    (tmp_path / "b.csv").write_text("\n\n")
    with pytest.raises(DataError, match="no columns"):
        read_table(tmp_path / "b.csv")


def test_content_not_matching_extension(tmp_path: Path) -> None:
    """Text in a .parquet, a parquet in a .csv, binary in a .csv, a CSV in a .pkl, text in a .gz: all stop."""
    (tmp_path / "a.parquet").write_text("user_id,saves\n1,2\n")
    with pytest.raises(DataError, match=r"a\.parquet: not a readable parquet file \(the file holds text"):
        read_table(tmp_path / "a.parquet")
    make_table().to_parquet(tmp_path / "b.csv")
    with pytest.raises(DataError, match=r"b\.csv: not a text table: the file holds a parquet file"):
        read_table(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(DataError, match="not a text table: the file holds binary data"):
        read_table(tmp_path / "c.csv")
    make_table().to_csv(tmp_path / "d.pkl", index=False)
    with pytest.raises(DataError, match=r"d\.pkl: not a readable pandas pickle \(the file holds text"):
        read_table(tmp_path / "d.pkl")
    make_table().to_csv(tmp_path / "e.csv.gz", index=False)  # pandas infers gzip from the name: write raw text
    (tmp_path / "e.csv.gz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="the name says gzip-compressed, but the file holds text"):
        read_table(tmp_path / "e.csv.gz")
    (tmp_path / "f.csv.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="could not decompress the file as gzip"):
        read_table(tmp_path / "f.csv.gz")


@pytest.mark.parametrize(
    "obj,kind", [({"a": [1, 2]}, "dict"), ([1, 2, 3], "list"), (pd.Series([1, 2]), "pandas.Series")]
)
def test_pickle_not_a_dataframe(tmp_path: Path, obj: object, kind: str) -> None:
    """A pickled dict, list or Series stops, naming its type."""
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(DataError, match=rf"x\.pkl: the pickle holds a {kind}"):
        read_table(path)


def test_zip_with_several_members(tmp_path: Path) -> None:
    """A zip holding more than one file stops and lists them."""
    path = tmp_path / "t.csv.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", "x\n1\n")
        zf.writestr("b.csv", "x\n2\n")
    with pytest.raises(DataError, match=r"exactly one file, it holds 2 \(a\.csv, b\.csv\)"):
        read_table(path)


def test_ragged_csv(tmp_path: Path) -> None:
    """A CSV whose lines have different field counts stops with the parser's reason."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match="could not be read as a table with delimiter commas"):
        read_table(path)


def test_compressed_pickle_and_bz2_xz(tmp_path: Path) -> None:
    """Pickles compressed with bz2 and xz read back."""
    df = make_table()
    for name, opener in (("t.pkl.bz2", bz2.open), ("t.pkl.xz", lzma.open)):
        with opener(tmp_path / name, "wb") as f:
            pickle.dump(df, f)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), df)


def test_load_table_checks_target_before_reading(tmp_path: Path) -> None:
    """An unknown target stops before the (possibly large) file is read."""
    with pytest.raises(DataError, match="unknown reward target"):
        load_table(tmp_path / "does_not_exist.csv", "likes_following_four_weeks")


def test_read_notes_not_carried_into_output(tmp_path: Path) -> None:
    """The output frame does not carry the read notes, so validating it again adds no entries."""
    path = tmp_path / "t.csv"
    make_table().to_csv(path, sep=";", index=False)
    out, log = load_table(path, TARGET)
    assert len(log.entries) == 1
    _, log2 = validate_table(out, TARGET)
    assert log2.entries == []


# ----------------------------------------------------------------------------- the shared cases

EXPECTED_CASES = {
    # file: (target, rows out or None for DataError, rows dropped or a message fragment)
    "CausalFandom_pandas1.5.pickle": (TARGET, 400, 0),
    "compressed_table.pkl.gz": (TARGET, 400, 0),
    "counts_as_text.csv": (TARGET, 399, 1),
    "missing_follows_action.parquet": (TARGET, None, "missing required column(s): 'follows_treatment_period'"),
    "misspelled_tickets_target.csv": (TICKETS, 400, 0),
    "nans_and_negative_counts.csv": (TARGET, 397, 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CASES))
def test_shared_cases(name: str) -> None:
    """Each shared input loads with logged repairs or stops with a clear DataError."""
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    target, rows, extra = EXPECTED_CASES[name]
    if rows is None:
        with pytest.raises(DataError) as err:
            load_table(path, target)
        assert str(err.value).startswith(f"{path}: {extra}")
        return
    out, log = load_table(path, target)
    assert len(out) == rows and log.rows_dropped == extra
    assert target in out.columns and out[target].dtype == np.float64
    for col in ACTIONS:
        assert out[col].dtype == np.float64 and (out[col] >= 0).all()
    if name == "counts_as_text.csv":
        (parsed, dropped) = entries_for(log, "streams_active_streams_treatment_period")
        assert parsed["rows"] == 58 and parsed["action"] == "parsed as numbers"
        assert dropped["problem"] == "missing value in row 1"
    if name == "nans_and_negative_counts.csv":
        assert sorted(set(range(400)) - set(out.index)) == [3, 5, 9]
    if name == "misspelled_tickets_target.csv":
        assert entries_for(log, TICKETS)[0]["action"] == f"renamed to '{TICKETS}'"
    if name == "CausalFandom_pandas1.5.pickle":
        assert log.to_records() == [{"problem": "1 column(s) not in the data contract: 'date'", "column": None,
                                     "rows": 0, "action": "ignored (left out of the output)"}]


def test_all_shared_cases_any_target() -> None:
    """Every file in the cases folder gives a frame or a DataError for every target (never another exception)."""
    for path in sorted(p for p in CASES.iterdir() if p.name != "README.md"):
        for target in TARGETS:
            try:
                out, _ = load_table(path, target)
            except DataError as exc:
                assert str(exc).startswith(str(path))
            else:
                assert target in out.columns


def test_repairs_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Each repair entry is also emitted on the fandom_lib logger with the source name."""
    df = make_table()
    df.loc[3, "saves_treatment_period"] = np.nan
    with caplog.at_level(logging.WARNING, logger="fandom_lib"):
        _, log = validate_table(df, TARGET, "src.csv")
    assert len(caplog.records) == len(log.entries) == 1
    assert caplog.records[0].getMessage() == (
        "src.csv [saves_treatment_period]: missing value in row 3; 1 row; dropped the rows"
    )
