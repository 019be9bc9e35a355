"""Papermill runs of the four notebooks through run_all.py on tiny parameters, and notebook hygiene."""

import json
import shutil

import nbformat
import numpy as np
import pandas as pd
import pytest

import run_all
from fandom_lib.pipeline import NOTEBOOKS, declared_parameters
from fandom_lib.schema import ACTIONS

from .conftest import CASES, PROJECT, TINY

COMMON = {"target": "str", "data_path": "str", "rows": "int", "seed": "int", "epochs": "int", "run_dir": "str"}
TARGET = "streams_active_streams_following_four_weeks"


def test_committed_notebooks_carry_no_outputs():
    for name in NOTEBOOKS:
        nb = nbformat.read(PROJECT / "notebooks" / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has outputs"


def test_every_notebook_declares_the_common_typed_parameters():
    declared = declared_parameters()
    for name in NOTEBOOKS:
        got = {k: v["type"] for k, v in declared[name].items() if k in COMMON}
        assert got == COMMON, name
        assert all(v["help"] for v in declared[name].values()), f"{name}: a parameter lacks its help comment"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    code = run_all.main(["--out", str(out), "--targets", TARGET, *TINY])
    return code, out


def test_run_all_on_synthetic_default_writes_every_report(synthetic_run):
    code, out = synthetic_run
    assert code == 0
    run = out / TARGET
    for name in NOTEBOOKS:
        assert (run / f"{name}.ipynb").exists() and (run / f"{name}.html").exists()
        nb = nbformat.read(run / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == []
    index = (out / "index.html").read_text()
    assert f"{TARGET}/04_contribution_analysis.html" in index and "FAILED:" not in index


def test_contributions_hold_one_row_per_analysed_row_and_telescope(synthetic_run):
    _, out = synthetic_run
    run = out / TARGET
    contrib = pd.read_parquet(run / "contributions.parquet")
    prepared = pd.read_parquet(run / "prepared.parquet")
    assert len(contrib) == 300
    assert contrib.index.equals(prepared.index)
    assert set(ACTIONS) | {"baseline", "prediction", "return"} <= set(contrib.columns)
    total = contrib["baseline"] + contrib[list(ACTIONS)].sum(axis=1)
    np.testing.assert_allclose(total, contrib["prediction"], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(contrib["return"], prepared[TARGET])


def test_summary_records_parameters_quality_and_means(synthetic_run):
    _, out = synthetic_run
    summary = json.loads((out / TARGET / "summary.json").read_text())
    assert summary["target"] == TARGET
    assert summary["rows"]["used"] == 300
    assert summary["rows"]["train"] + summary["rows"]["held_out"] == 300
    assert summary["parameters"]["epochs"] == 1
    assert summary["training"]["config"]["loss"] == "poisson"  # the loss "auto" chose for streams
    assert set(summary["mean_contribution"]) == set(ACTIONS)
    assert 0 <= summary["quality_gate"]["rse"] and summary["quality_gate"]["threshold"] == 0.2
    assert summary["truth"] is not None and set(summary["truth"]) == set(ACTIONS)
    assert summary["sentences"] and "quality gate" in summary["sentences"][0]


def test_rerun_with_nothing_changed_skips_every_notebook(synthetic_run, capsys):
    code, out = synthetic_run
    before = (out / TARGET / "summary.json").stat().st_mtime_ns
    assert run_all.main(["--out", str(out), "--targets", TARGET, *TINY]) == 0
    assert "01 skipped, 02 skipped, 03 skipped, 04 skipped" in capsys.readouterr().out
    assert (out / TARGET / "summary.json").stat().st_mtime_ns == before


def test_a_notebook_rerun_by_hand_in_the_run_folder_is_noticed(synthetic_run, capsys, caplog):
    """model.pt and 02's notebook replaced (as a hand rerun of 02 with papermill does): the next run reruns
    02 and everything after it, so the reports never mix two models; 01 stays skipped."""
    code, out = synthetic_run
    run = out / TARGET
    for name in ("model.pt", "02_training.ipynb"):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data)  # the same bytes, written anew
    assert run_all.main(["--out", str(out), "--targets", TARGET, *TINY]) == 0
    captured = capsys.readouterr()
    assert "01 skipped, 02 ran, 03 ran, 04 ran" in captured.out
    assert "02_training: 02_training.ipynb, model.pt changed outside run_all.py" in caplog.text
    assert run_all.main(["--out", str(out), "--targets", TARGET, *TINY]) == 0
    assert "01 skipped, 02 skipped, 03 skipped, 04 skipped" in capsys.readouterr().out
    # a parameter of 03 only: 04 reads no file of 03's, so it stays as it is
    assert run_all.main(["--out", str(out), "--targets", TARGET, *TINY, "-p", "n_samples=2"]) == 0
    assert "01 skipped, 02 skipped, 03 ran, 04 skipped" in capsys.readouterr().out


def test_ids_in_the_row_index_label_the_contributions(tmp_path):
    """A table whose (user_id, artist_id) ids are its row index: contributions.parquet has that index."""
    table = pd.read_pickle(CASES / "CausalFandom_pandas1.5.pickle")
    table["artist_id"] = [f"a{i % 13}" for i in range(len(table))]
    table["user_id"] = [f"u{i}" for i in range(len(table))]
    table = table.set_index(["user_id", "artist_id"])
    path = tmp_path / "ids.parquet"
    table.to_parquet(path)
    out = tmp_path / "reports"
    assert run_all.main(["--data", str(path), "--out", str(out), "--targets", TARGET, *TINY[2:]]) == 0
    contrib = pd.read_parquet(out / TARGET / "contributions.parquet")
    assert contrib.index.equals(table.index) and contrib.index.names == ["user_id", "artist_id"]


def test_run_all_on_an_old_pandas_pickle_keeps_the_tables_own_index(tmp_path):
    src = CASES / "CausalFandom_pandas1.5.pickle"
    table = pd.read_pickle(src)
    table.index = table.index * 10 + 7  # a non-trivial index, which must come back unchanged
    path = tmp_path / "table.pickle"
    table.to_pickle(path)
    out = tmp_path / "reports"
    code = run_all.main(["--data", str(path), "--out", str(out), "--targets", TARGET,
                         "-p", "epochs=1", "-p", "n_orders=2", "-p", "ig_rows=50"])
    assert code == 0
    contrib = pd.read_parquet(out / TARGET / "contributions.parquet")
    assert contrib.index.equals(table.index)
    summary = json.loads((out / TARGET / "summary.json").read_text())
    assert summary["synthetic"] is False and summary["truth"] is None


def test_a_bad_table_fails_its_target_with_the_error_visible(tmp_path, capsys):
    out = tmp_path / "reports"
    code = run_all.main(["--data", str(CASES / "missing_follows_action.parquet"), "--out", str(out),
                         "--targets", TARGET, *TINY])
    assert code == 1
    printed = capsys.readouterr().out
    assert "failed" in printed and "follows_treatment_period" in printed
    html = (out / TARGET / "01_data_prep.html").read_text()
    assert "follows_treatment_period" in html
    assert "FAILED" in (out / "index.html").read_text()
    assert not (out / TARGET / "02_training.html").exists()
