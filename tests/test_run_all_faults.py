"""run_all.py under faults: a failing target does not cost the others; Ctrl-C and kill -9 leave no report
that looks complete, and the next run picks up where the last one stopped; nothing of the user's is lost."""

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pandas as pd
import psutil
import pytest

import run_all
from fandom_lib import pipeline
from fandom_lib.pipeline import NOTEBOOKS, STATE_DIR
from fandom_lib.synthetic import generate

from .conftest import PROJECT, TINY

MERCH, SHARES = "merch_following_four_weeks", "shares_following_four_weeks"


def current_umask() -> int:
    """The process umask, read without changing it for good."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def errors_in(path):
    nb = nbformat.read(path, as_version=4)
    return [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*.part*"))


def test_one_failing_target_does_not_cost_the_other(tmp_path, capsys):
    table = generate(300).drop(columns=[MERCH])  # merch cannot run on this table; shares can
    data = tmp_path / "table.parquet"
    table.to_parquet(data)
    out = tmp_path / "reports"
    (out / SHARES).mkdir(parents=True)
    (out / "my notes.txt").write_text("mine")  # the user's own files in the reports folder
    (out / SHARES / "my_analysis.py").write_text("mine too")
    (out / SHARES / ".02_training.ipynb.x1y2z3.part.ipynb").write_text("{half a notebook")  # a killed run's
    (out / SHARES / STATE_DIR).mkdir()
    (out / SHARES / STATE_DIR / ".01_data_prep.json.abc.part").write_text("{")

    code = run_all.main(["--data", str(data), "--out", str(out), "--targets", "merch", "shares", "--jobs", "2", *TINY])
    printed = capsys.readouterr().out
    assert code == 1
    assert f"{MERCH}: failed" in printed and f"{SHARES}: ok" in printed
    assert "DataError" in printed and f"'{MERCH}'" in printed  # the missing column, named in the terminal
    assert f"see {out / MERCH / '01_data_prep.html'}" in printed

    failed = out / MERCH
    assert errors_in(failed / "01_data_prep.ipynb")  # the executed notebook is kept with its error
    html = (failed / "01_data_prep.html").read_text()
    assert "DataError" in html and MERCH in html
    assert not (failed / "02_training.html").exists() and not (failed / STATE_DIR / "01_data_prep.json").exists()

    ok = out / SHARES
    for name in NOTEBOOKS:
        assert (ok / f"{name}.html").exists() and not errors_in(ok / f"{name}.ipynb")
        assert (ok / STATE_DIR / f"{name}.json").exists()
    assert len(pd.read_parquet(ok / "contributions.parquet")) == 300
    assert oct((ok / "04_contribution_analysis.html").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())

    index = (out / "index.html").read_text()
    assert index.count("FAILED:") == 1 and "DataError" in index
    assert f'{MERCH}/01_data_prep.html"' in index and f'{MERCH}/02_training.html"' not in index
    assert f'{SHARES}/04_contribution_analysis.html"' in index
    assert (out / "my notes.txt").read_text() == "mine" and (ok / "my_analysis.py").read_text() == "mine too"
    assert leftovers(out) == []  # the killed run's temporary files are gone


def test_nothing_deletes_a_folder_wholesale():
    for path in (PROJECT / "fandom_lib" / "pipeline.py", PROJECT / "run_all.py"):
        source = path.read_text()
        assert "rmtree" not in source and "removedirs" not in source and "rmdir" not in source, path


def start(out):
    """run_all.py in its own process group, as a user would start it."""
    log = open(out.parent / f"log-{time.time_ns()}.txt", "w+")
    proc = subprocess.Popen([sys.executable, str(PROJECT / "run_all.py"), "--out", str(out), "--targets", MERCH, *TINY],
                            cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def wait_for(path, proc, timeout=150):
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "run_all.py ended before the point to interrupt it"
        assert time.monotonic() < end, f"timed out waiting for {path}"
        time.sleep(0.1)


def stamps(run):
    return [n for n in NOTEBOOKS if (run / STATE_DIR / f"{n}.json").exists()]


def test_interrupted_and_killed_runs_resume_to_complete_reports(tmp_path, capsys):
    out = tmp_path / "reports"
    run = out / MERCH
    run.mkdir(parents=True)
    (run / "keep.txt").write_text("the user's")

    # Ctrl-C (SIGINT to the process group) while notebook 02 runs: stops promptly, says so, exit 130
    proc, log = start(out)
    try:
        wait_for(run / STATE_DIR / "01_data_prep.json", proc)
        time.sleep(1.0)  # notebook 02 under way
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log.seek(0)
    printed = log.read()
    assert code == 130, printed
    assert time.monotonic() - t0 < 15
    assert f"interrupted; not finished: {MERCH}" in printed and "Traceback" not in printed
    done = stamps(run)
    assert done == list(NOTEBOOKS[: len(done)]) and "01_data_prep" in done and len(done) < 4
    assert "INTERRUPTED" in (out / "index.html").read_text()
    assert json.loads((run / STATE_DIR / "status.json").read_text())["status"] == "interrupted"
    assert not (run / "summary.json").exists() and leftovers(out) == []

    # kill -9 of the whole process group once 02 has finished: no stamp for the notebook it was running
    proc, log = start(out)
    try:
        wait_for(run / STATE_DIR / "02_training.json", proc)
        time.sleep(0.5)  # notebook 03 under way
        ours = psutil.Process(proc.pid).children(recursive=True)  # its kernels run in sessions of their own
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    gone, alive = psutil.wait_procs(ours, timeout=5)  # kernels quit once their parent is gone
    for p in alive:
        p.kill()
    done = stamps(run)
    assert done[:2] == ["01_data_prep", "02_training"] and "04_contribution_analysis" not in done
    assert not (run / "summary.json").exists()
    index = (out / "index.html").read_text()
    assert "NOT FINISHED" in index and "<td>ok" not in index
    (run / ".summary.json.k1ll3d.part").write_text("{")  # what a kill inside runfiles.write_json leaves

    # the next run completes the report, skipping what finished before the kill
    code = run_all.main(["--out", str(out), "--targets", MERCH, *TINY])
    printed = capsys.readouterr().out
    assert code == 0
    assert "01 skipped, 02 skipped" in printed
    for name in NOTEBOOKS:
        assert (run / f"{name}.html").exists() and not errors_in(run / f"{name}.ipynb")
    assert stamps(run) == list(NOTEBOOKS)
    assert len(pd.read_parquet(run / "contributions.parquet")) == 300
    summary = json.loads((run / "summary.json").read_text())
    assert summary["target"] == MERCH and summary["rows"]["used"] == 300
    index = (out / "index.html").read_text()
    assert "<td>ok" in index and "NOT FINISHED" not in index and "INTERRUPTED" not in index
    assert leftovers(out) == [] and (run / "keep.txt").read_text() == "the user's"


@pytest.mark.parametrize("kept", [False, True])
def test_index_lists_earlier_targets_and_links_only_current_reports(tmp_path, kept):
    out = tmp_path / "reports"
    for t in (MERCH, SHARES):
        (out / t / STATE_DIR).mkdir(parents=True)
        for n in NOTEBOOKS:
            (out / t / f"{n}.html").write_text("report")
    earlier = pipeline.TargetOutcome(SHARES, "ok", {n: "ran" for n in NOTEBOOKS})
    if kept:
        pipeline.write_status(out / SHARES, earlier)
    now = pipeline.TargetOutcome(MERCH, "failed", {"01_data_prep": "ran", "02_training": "failed",
                                                    "03_sample_visualisation": "not run",
                                                    "04_contribution_analysis": "not run"}, error="boom")
    index = pipeline.write_index(out, [now]).read_text()
    assert f'{MERCH}/02_training.html"' in index and f'{MERCH}/03_sample_visualisation.html"' not in index
    assert (f'{SHARES}/04_contribution_analysis.html"' in index) == kept
    assert ("earlier run" in index) == kept
