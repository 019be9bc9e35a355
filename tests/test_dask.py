"""run_all.py --scheduler: the targets run on a Dask distributed cluster through its concurrent.futures
executor (a local cluster here); the client is closed afterwards and the progress bar counts notebooks."""

import json

import pandas as pd
import pytest

import run_all
from fandom_lib import pipeline
from fandom_lib.pipeline import NOTEBOOKS

from .conftest import TINY

distributed = pytest.importorskip("distributed")
TARGET = "tickets_following_four_weeks"


def test_run_all_on_a_local_dask_cluster(tmp_path, capsys):
    out = tmp_path / "reports"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        code = run_all.main(["--scheduler", cluster.scheduler_address, "--out", str(out), "--targets", TARGET, *TINY])
        clients = set(cluster.scheduler.clients) - {"fire-and-forget"}
    captured = capsys.readouterr()
    assert code == 0, captured
    assert clients == set(), "run_all must close its Dask client"
    assert f"{TARGET}: ok" in captured.out and "01 ran, 02 ran, 03 ran, 04 ran" in captured.out
    assert "4/4" in captured.err and "notebook" in captured.err  # the bar follows the worker's notebooks
    run = out / TARGET
    for name in NOTEBOOKS:
        assert (run / f"{name}.html").exists()
    assert len(pd.read_parquet(run / "contributions.parquet")) == 300
    assert json.loads((run / "summary.json").read_text())["rows"]["used"] == 300
    assert "<td>ok" in (out / "index.html").read_text()


def test_a_scheduler_that_cannot_be_reached_is_a_parameter_error():
    with pytest.raises(pipeline.ParameterError, match="cannot reach the Dask scheduler"):
        with pipeline.make_executor(scheduler="tcp://127.0.0.1:9", timeout=1):
            pass


def test_a_port_where_no_dask_scheduler_answers_is_a_parameter_error():
    """Something listens but never speaks Dask: a one-line ParameterError within timeout + 5 s, no hang."""
    import socket
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(pipeline.ParameterError, match="no Dask scheduler answers there"):
            with pipeline.make_executor(scheduler=address, timeout=1):
                pass
        assert time.perf_counter() - start < 10
