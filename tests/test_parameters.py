"""Bad run_all.py arguments: each a one-line error on stderr, exit status 2, nothing run, no traceback."""

import pytest

import run_all
from fandom_lib.synthetic import generate

from .conftest import TINY


def fails(capsys, tmp_path, *argv):
    """Run run_all.main with argv; assert exit 2, one line on stderr, nothing on stdout, no output folder."""
    out = tmp_path / "reports"
    code = run_all.main(["--out", str(out), *argv])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_all.py: error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists(), "nothing may run (or be created) before the arguments are all checked"
    return lines[0]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    table = generate(120)
    table.to_parquet(folder / "t.parquet")
    table.to_csv(folder / "t.csv", index=False)
    (folder / "empty.csv").write_text("")
    return folder


def test_unknown_target(capsys, tmp_path):
    msg = fails(capsys, tmp_path, "--targets", "merch_following_four_weeks", "marhc")
    assert "--targets marhc: unknown reward target; did you mean merch?" in msg
    assert "shares_following_four_weeks" in msg  # the choices


def test_a_target_twice(capsys, tmp_path):
    msg = fails(capsys, tmp_path, "--targets", "merch", "merch_following_four_weeks")
    assert "a target is given twice" in msg


@pytest.mark.parametrize("value", ["0", "-3"])
def test_epochs_zero_or_less(capsys, tmp_path, value):
    assert fails(capsys, tmp_path, "-p", f"epochs={value}") == \
        f"run_all.py: error: -p epochs={value}: epochs must be at least 1"


def test_negative_rows_and_other_bad_values(capsys, tmp_path):
    assert "rows must be 0 (all) or positive" in fails(capsys, tmp_path, "-p", "rows=-5")
    for bad in ("-1", "4294967295", "99999999999999999999"):
        assert "seed must be between 0 and 4,294,967,294" in fails(capsys, tmp_path, "-p", f"seed={bad}")
    assert "at most 20 fans can be shown" in fails(capsys, tmp_path, "-p", "n_samples=1000")
    for bad in ("0", "inf", "nan"):
        assert "learning_rate must be a positive number" in fails(capsys, tmp_path, "-p", f"learning_rate={bad}")
    assert "choose one of auto, squared, poisson" in fails(capsys, tmp_path, "-p", "loss=absolute")
    assert "--jobs 0: must be at least 1" in fails(capsys, tmp_path, "--jobs", "0")


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])  # parquet: from its metadata; csv: read
def test_more_rows_than_the_table_has(capsys, tmp_path, tables, name):
    msg = fails(capsys, tmp_path, "--data", str(tables / name), "-p", "rows=500", "-p", "epochs=1")
    assert msg == (f"run_all.py: error: -p rows=500: the table {tables / name} has only 120 rows; "
                   "ask for at most 120, or -p rows=0 for all of them")


def test_an_unreadable_table_is_named_when_rows_are_checked(capsys, tmp_path, tables):
    msg = fails(capsys, tmp_path, "--data", str(tables / "empty.csv"), "-p", "rows=100")
    assert "empty.csv: the file is empty" in msg


def test_data_path_that_does_not_exist(capsys, tmp_path):
    msg = fails(capsys, tmp_path, "--data", str(tmp_path / "nope.pickle"))
    assert msg.startswith(f"run_all.py: error: --data {tmp_path / 'nope.pickle'}: no such file")
    msg = fails(capsys, tmp_path, "--data", str(tmp_path))
    assert "is a folder; give the path of a table file" in msg


def test_a_parameter_no_notebook_declares(capsys, tmp_path):
    msg = fails(capsys, tmp_path, "-p", "epoch=3")
    assert "-p epoch: no notebook declares a parameter 'epoch'; did you mean epochs?" in msg
    assert "known: aux_weight" in msg and "n_orders" in msg
    assert "expected NAME=VALUE" in fails(capsys, tmp_path, "-p", "epochs")


def test_parameters_run_all_sets_itself(capsys, tmp_path):
    assert "use --targets instead" in fails(capsys, tmp_path, "-p", "target=merch_following_four_weeks")
    assert "use --out instead" in fails(capsys, tmp_path, "-p", "run_dir=/tmp/x")


@pytest.mark.parametrize("pair, expected", [
    ("epochs=abc", "-p epochs=abc: epochs must be an int, e.g. -p epochs=3"),
    ("rows=1.5", "-p rows=1.5: rows must be an int, e.g. -p rows=3"),
    ("learning_rate=fast", "-p learning_rate=fast: learning_rate must be a float, e.g. -p learning_rate=0.5"),
    ("return_correction=maybe", "-p return_correction=maybe: return_correction must be a bool, "
                                "e.g. -p return_correction=true"),
])
def test_a_value_of_the_wrong_type(capsys, tmp_path, pair, expected):
    assert fails(capsys, tmp_path, "-p", pair) == f"run_all.py: error: {expected}"


def test_out_that_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("mine")
    code = run_all.main(["--out", str(tmp_path / "file"), *TINY])
    assert code == 2
    assert "is a file; give a folder for the reports" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


def test_help_lists_options_targets_parameters_and_exit_status(capsys):
    with pytest.raises(SystemExit) as stop:
        run_all.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--data PATH", "--targets T", "--out DIR", "-p NAME=VALUE", "--jobs N", "--force",
                   "--scheduler ADDRESS", "merch_following_four_weeks", "epochs (int, default 30; all notebooks)",
                   "ig_rows (int", "exit status", "130 interrupted", "examples:"):
        assert needle in text, needle
    for name in ("run_dir", "target", "data_path"):  # set by run_all.py itself, or by --data
        assert f"\n  {name} (" not in text


def test_a_scheduler_address_that_does_not_resolve_fails_at_once(capsys, tmp_path):
    msg = fails(capsys, tmp_path, "--scheduler", "no-such-host.invalid")
    assert msg.startswith("run_all.py: error: --scheduler no-such-host.invalid: cannot reach the Dask scheduler "
                          "at no-such-host.invalid:8786")


def test_targets_in_any_case_and_short_form():
    from fandom_lib.pipeline import canonical_run_target

    assert canonical_run_target("MERCH") == "merch_following_four_weeks"
    assert canonical_run_target(" Ticket_Following_Four_Weeks ") == "tickets_following_four_weeks"
