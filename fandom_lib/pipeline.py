"""Running the four notebooks per target: parameter checks, papermill execution, HTML rendering,
skipping unchanged work, atomic outputs, interruption, and the index page. `run_all.py` is its
command line.

Files in a target's run folder <out>/<target>/:

- NN_name.ipynb / NN_name.html: the executed notebook and its rendering, moved into place only once
  papermill has finished with it (a notebook that raised is kept, with its error, and rendered with
  its code so the error can be read in place);
- .state/NN_name.json: the fingerprint of the notebook's last successful run and the size and time of
  the files it wrote, written last. A notebook is skipped when its stamp matches and its files are as it
  left them, so a killed run resumes after the last notebook that finished, and a notebook rerun by hand
  in the run folder is noticed (it reruns, with every notebook that reads its files);
- .state/status.json: the target's status (running, ok, failed, interrupted) for the index page;
- .state/lock: held while a run_all.py works on the target;
- .*.part*: temporary files being written; left behind only by a killed run and removed by the next
  run of that target.

Nothing else in <out> is touched, and nothing is ever deleted wholesale.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import difflib
import hashlib
import html
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import runfiles as rf
from .analysis import explained_share
from .schema import TARGET_ALIASES, TARGET_LABELS, TARGETS
from .steps import MAX_SAMPLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS: tuple[str, ...] = (
    "01_data_prep",
    "02_training",
    "03_sample_visualisation",
    "04_contribution_analysis",
)
# The run-folder files each notebook writes besides its own .ipynb/.html: a notebook whose outputs were
# replaced since its stamp (a notebook rerun by hand in the run folder) is rerun, and every one after it.
NOTEBOOK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "01_data_prep": (rf.PREPARED, rf.PREP_INFO, rf.TRUTH),
    "02_training": (rf.MODEL, rf.TRAINING_INFO, rf.CONTRIBUTIONS, rf.CONTRIBUTIONS_REFERENCE),
    "03_sample_visualisation": (),
    "04_contribution_analysis": (rf.SUMMARY,),
}
NOTEBOOK_TITLES = dict(zip(NOTEBOOKS, ("Data preparation", "Training", "Sample fans", "Contribution analysis")))
STATE_DIR = ".state"  # per-notebook fingerprints of the last successful run, status, lock
STATUS_FILE = "status.json"
LOCK_FILE = "lock"
PART_GLOB = ".*.part*"  # temporary files (runfiles.atomic_path and the papermill output)
SET_BY_RUN_ALL = {"target": "--targets", "run_dir": "--out"}  # notebook parameters run_all.py sets itself
TARGET_SUFFIX = "_following_four_weeks"
MAX_SEED = 2**32 - 2  # numpy takes seeds below 2**32, and training also uses seed + 1

_STOP = threading.Event()  # set when the run is interrupted: running targets stop, queued ones never start


class ParameterError(ValueError):
    """A run parameter that cannot work; raised before anything runs."""


# ---------------------------------------------------------------- parameters


def declared_parameters(notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, dict[str, dict]]:
    """For each notebook, its declared parameters: name -> {type, default, help} (papermill's inspection)."""
    import papermill

    out = {}
    for name in NOTEBOOKS:
        params = papermill.inspect_notebook(str(notebook_dir / f"{name}.ipynb"))
        out[name] = {k: {"type": v["inferred_type_name"], "default": v["default"], "help": v["help"]}
                     for k, v in params.items()}
    return out


def parameter_help(declared: dict[str, dict[str, dict]]) -> str:
    """Every notebook parameter -p can set, with its type, default, help and the notebooks that use it."""
    seen: dict[str, tuple[dict, list[str]]] = {}
    for nb, params in declared.items():
        for k, v in params.items():
            seen.setdefault(k, (v, []))[1].append(nb)
    lines = []
    for k, (v, nbs) in seen.items():
        if k in SET_BY_RUN_ALL or k == "data_path":  # data_path: --data
            continue
        where = "all notebooks" if len(nbs) == len(declared) else ", ".join(nbs)
        lines.append(f"  {k} ({v['type']}, default {v['default']}; {where})")
        lines.append(f"      {v['help']}")
    return "\n".join(lines)


def convert_value(name: str, text: str, type_name: str) -> Any:
    """Convert a command-line value to the parameter's declared type, or raise ParameterError."""
    try:
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
        if type_name == "bool":
            low = text.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
        return text
    except ValueError:
        example = {"int": "3", "float": "0.5", "bool": "true"}.get(type_name, "text")
        article = "an" if type_name[:1] in "aeiou" else "a"
        raise ParameterError(
            f"-p {name}={text}: {name} must be {article} {type_name}, e.g. -p {name}={example}"
        ) from None


def parse_parameters(pairs: Iterable[str], declared: dict[str, dict[str, dict]]) -> dict[str, Any]:
    """Turn NAME=VALUE strings into typed parameters; reject names no notebook declares."""
    types = {k: v["type"] for nb in declared.values() for k, v in nb.items()}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"-p {pair}: expected NAME=VALUE, e.g. -p epochs=10")
        name, text = pair.split("=", 1)
        name = name.strip()
        if name in SET_BY_RUN_ALL:
            raise ParameterError(f"-p {name}: run_all.py sets {name} itself; use {SET_BY_RUN_ALL[name]} instead")
        if name not in types:
            near = difflib.get_close_matches(name, list(types), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            known = ", ".join(sorted(k for k in types if k not in SET_BY_RUN_ALL))
            raise ParameterError(f"-p {name}: no notebook declares a parameter {name!r}; {hint}known: {known}")
        out[name] = convert_value(name, text.strip(), types[name])
    return out


def canonical_run_target(name: str) -> str:
    """A target's canonical name: the full name, its alias, or the short form (`merch`), else ParameterError."""
    name = name.strip().lower()  # column names are matched without case too
    for candidate in (name, name + TARGET_SUFFIX):
        candidate = TARGET_ALIASES.get(candidate, candidate)
        if candidate in TARGETS:
            return candidate
    short = [t[: -len(TARGET_SUFFIX)] for t in TARGETS]
    near = difflib.get_close_matches(name, list(TARGETS) + short, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]}? " if near else ""
    raise ParameterError(f"--targets {name}: unknown reward target; {hint}choose from: {', '.join(TARGETS)} "
                         f"(or the short forms {', '.join(short)})")


def table_rows(path: str | Path) -> int:
    """Rows in a table file: from the metadata for parquet, else by reading it (raises loading.DataError)."""
    from .loading import read_table

    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        except Exception:  # not really parquet: read_table says what it is
            pass
    return len(read_table(p))


def check_run_parameters(targets: list[str], params: dict[str, Any]) -> list[str]:
    """Check targets and parameter values before anything runs; return canonical target names.

    A `data_path` is resolved to an absolute path in `params` (the notebooks run in notebooks/)."""
    if not targets:
        raise ParameterError("no targets given; choose from: " + ", ".join(TARGETS))
    canon = [canonical_run_target(t) for t in targets]
    if len(set(canon)) != len(canon):
        raise ParameterError("--targets: a target is given twice: " + ", ".join(targets))
    for name in ("epochs", "hidden", "layers", "batch_size", "n_orders", "n_samples", "patience", "ig_rows"):
        if name in params and params[name] < 1:
            raise ParameterError(f"-p {name}={params[name]}: {name} must be at least 1")
    if params.get("rows", 0) < 0:
        raise ParameterError(f"-p rows={params['rows']}: rows must be 0 (all) or positive")
    if not 0 <= params.get("seed", 0) <= MAX_SEED:
        raise ParameterError(f"-p seed={params['seed']}: seed must be between 0 and {MAX_SEED:,}")
    if params.get("n_samples", 1) > MAX_SAMPLES:
        raise ParameterError(f"-p n_samples={params['n_samples']}: at most {MAX_SAMPLES} fans can be shown")
    if "learning_rate" in params and not 0 < params["learning_rate"] < math.inf:
        raise ParameterError(f"-p learning_rate={params['learning_rate']}: learning_rate must be a positive number")
    if "aux_weight" in params and not params["aux_weight"] >= 0:
        raise ParameterError(f"-p aux_weight={params['aux_weight']}: aux_weight must be 0 or positive")
    choices = {"method": ("averaged", "reference"), "train_order": ("random", "reference"),
               "loss": ("auto", "squared", "poisson")}
    for name, allowed in choices.items():
        if name in params and params[name] not in allowed:
            raise ParameterError(f"-p {name}={params[name]}: choose one of {', '.join(allowed)}")
    data = params.get("data_path", "")
    if data:
        path = Path(data).expanduser()
        if not path.exists():
            raise ParameterError(f"--data {data}: no such file (working directory {Path.cwd()}); "
                                 "give the path of a .pkl/.pickle/.parquet/.csv table")
        if path.is_dir():
            raise ParameterError(f"--data {data}: is a folder; give the path of a table file")
        params["data_path"] = str(path.resolve())
        rows = params.get("rows", 0)
        if rows:
            from .loading import DataError

            try:
                n = table_rows(path)
            except DataError as e:
                raise ParameterError(str(e)) from None
            if rows > n:
                raise ParameterError(f"-p rows={rows}: the table {data} has only {n:,} row{'s' if n != 1 else ''}; "
                                     f"ask for at most {n:,}, or -p rows=0 for all of them")
    return canon


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, created if needed, as an absolute path; ParameterError if it cannot be."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out_dir}: is a file; give a folder for the reports")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParameterError(f"--out {out_dir}: cannot create the folder ({e.strerror or e})") from None
    if not os.access(out, os.W_OK):
        raise ParameterError(f"--out {out_dir}: the folder is not writable")
    return out.resolve()


# ---------------------------------------------------------------- fingerprints


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (the data file's identity, whatever its name or time stamp)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_fingerprint() -> str:
    """sha256 over the library's source files."""
    h = hashlib.sha256()
    for p in sorted((PROJECT_ROOT / "fandom_lib").glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def step_fingerprint(notebook: str, params: dict, data_fp: str, code_fp: str, previous: str) -> str:
    """Identity of one notebook run: its source, its parameters, the data, the library and the step before."""
    h = hashlib.sha256()
    h.update((NOTEBOOK_DIR / f"{notebook}.ipynb").read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(f"{data_fp}|{code_fp}|{previous}".encode())
    return h.hexdigest()


# ---------------------------------------------------------------- running one target


@dataclass
class TargetOutcome:
    """What happened to one target."""

    target: str
    status: str = "pending"  # ok | failed | interrupted (| running, in the status file while it runs)
    notebooks: dict[str, str] = field(default_factory=dict)  # name -> ran | skipped | failed | interrupted | not run
    error: str = ""
    seconds: float = 0.0
    summary: dict | None = None
    finished: float = 0.0  # time.time() when the status was last written
    run_id: str = ""  # which run_all call wrote the status
    earlier: bool = False  # read from the status file of an earlier run (not part of this run)


def render_html(notebook_path: Path, html_path: Path) -> None:
    """Render an executed notebook to HTML without code cells (prose, tables, figures and errors stay)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook_path, as_version=4)
    failed = any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = not failed  # a failed run shows its code so the error can be read in place
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    rf.write_atomic(html_path, lambda tmp: tmp.write_text(body, encoding="utf-8"))


def notebook_parameters(notebook: str, params: dict, declared: dict[str, dict[str, dict]]) -> dict:
    """The subset of the run's parameters this notebook declares."""
    return {k: v for k, v in params.items() if k in declared[notebook]}


def write_status(run_dir: Path, outcome: TargetOutcome) -> None:
    """Record the target's status for the index page (atomically)."""
    outcome.finished = time.time()
    record = asdict(outcome)
    record.pop("summary")
    record.pop("earlier")
    rf.write_json(run_dir / STATE_DIR / STATUS_FILE, record)


def read_status(run_dir: Path) -> TargetOutcome | None:
    """A target's last recorded status, or None."""
    try:
        record = rf.read_json(run_dir / STATE_DIR / STATUS_FILE)
        outcome = TargetOutcome(**{k: v for k, v in record.items() if k in TargetOutcome.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None
    if outcome.status == "ok" and (run_dir / rf.SUMMARY).exists():
        with contextlib.suppress(OSError, ValueError):
            outcome.summary = rf.read_json(run_dir / rf.SUMMARY)
    return outcome


def remove_leftovers(folder: Path, pattern: str = PART_GLOB, older_than: float = 0.0) -> list[Path]:
    """Remove temporary files (`.*.part*`) a killed run left behind in one folder (not recursive)."""
    removed = []
    now = time.time()
    for p in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if p.is_file() and now - p.stat().st_mtime >= older_than:
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def target_lock(state_dir: Path) -> Iterator[bool]:
    """Hold an exclusive lock on the target's folder; yields False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield True
        return
    with open(state_dir / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:  # a file system without locks
            yield True
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def worker_threads() -> int:
    """Cores per concurrently running task on a Dask worker (its cores / its threads)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        from distributed import get_worker

        worker = get_worker()
        nthreads = getattr(worker, "nthreads", None) or getattr(getattr(worker, "state", None), "nthreads", 1)
    except (ImportError, ValueError):
        nthreads = 1
    return max(1, cores // max(1, int(nthreads)))


def run_target(
    target: str,
    out_dir: str,
    params: dict,
    declared: dict[str, dict[str, dict]],
    force: bool = False,
    on_step: Callable[[str, str, str], None] | None = None,
    data_fp: str | None = None,
    threads: int | None = None,
    run_id: str = "",
) -> TargetOutcome:
    """Run (or skip, when unchanged) the four notebooks for one target, each rendered to HTML.

    `out_dir` and `params["data_path"]` should be absolute (they are on a Dask worker). `threads`
    sets FANDOM_THREADS for the kernels (None: this machine's cores / the Dask worker's threads).
    The status file, tagged with `run_id`, is updated after every notebook (how run_all follows a
    target on a Dask worker). The run stops early, as "interrupted", when `_STOP` is set."""
    import papermill

    start = time.perf_counter()
    run_dir = Path(out_dir).resolve() / target
    state_dir = run_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    outcome = TargetOutcome(target, run_id=run_id)

    def mark(names: Iterable[str], what: str, shown: str = "") -> None:
        for name in names:
            outcome.notebooks[name] = what
            if on_step:
                on_step(target, name, shown or what)
        write_status(run_dir, outcome)

    with target_lock(state_dir) as locked:
        if not locked:
            outcome.status = "failed"
            outcome.error = f"another run_all.py is writing {run_dir}; wait for it to finish or use another --out"
            for name in NOTEBOOKS:
                outcome.notebooks[name] = "not run"
                if on_step:
                    on_step(target, name, "not run")
            return outcome
        if threads is None:
            os.environ["FANDOM_THREADS"] = str(worker_threads())
        remove_leftovers(run_dir)
        remove_leftovers(state_dir)
        params = {**params, "target": target, "run_dir": str(run_dir)}
        data = params.get("data_path", "")
        if data_fp is None:
            data_fp = file_fingerprint(data) if data else "synthetic"
        code_fp = code_fingerprint()
        outcome.status = "running"
        write_status(run_dir, outcome)
        previous, must_run = "", force
        for i, name in enumerate(NOTEBOOKS):
            if _STOP.is_set():
                outcome.status = "interrupted"
                mark(NOTEBOOKS[i:], "not run")
                break
            nb_params = notebook_parameters(name, params, declared)
            fp = step_fingerprint(name, nb_params, data_fp, code_fp, previous)
            feeds_later = bool(NOTEBOOK_OUTPUTS[name])  # later notebooks read only the files notebooks write
            if feeds_later:
                previous = fp
            out_nb, out_html, stamp = run_dir / f"{name}.ipynb", run_dir / f"{name}.html", state_dir / f"{name}.json"
            if not must_run and out_nb.exists() and out_html.exists() and stamp_matches(stamp, fp):
                replaced = files_replaced(run_dir, stamp)
                if not replaced:
                    mark([name], "skipped", "skipped (unchanged)")
                    continue
                logging.getLogger("fandom_lib.run_all").warning(
                    "%s %s: %s changed outside run_all.py since its last run; running it again",
                    target, name, ", ".join(replaced))
            # this notebook reruns, so every later one must too if it reads this one's files: their stamps
            # go before anything changes
            must_run = must_run or feeds_later
            for later in NOTEBOOKS[i:] if feeds_later else (name,):
                (state_dir / f"{later}.json").unlink(missing_ok=True)
            tmp_nb = rf.atomic_path(out_nb, suffix=".part.ipynb")
            published = False
            try:
                try:
                    with kernel_options() as options:
                        papermill.execute_notebook(
                            str(NOTEBOOK_DIR / f"{name}.ipynb"), str(tmp_nb), parameters=nb_params,
                            cwd=str(NOTEBOOK_DIR), progress_bar=False, kernel_name="python3", **options,
                        )
                    failed = None
                except Exception as e:  # papermill keeps the executed notebook with the error visible
                    failed = e
                if _STOP.is_set() and failed is not None:  # killed on purpose: the partial notebook goes
                    outcome.status = "interrupted"
                    mark([name], "interrupted")
                    mark(NOTEBOOKS[i + 1:], "not run")
                    break
                if tmp_nb.exists() and tmp_nb.stat().st_size:
                    rf.publish(tmp_nb, out_nb)
                    render_html(out_nb, out_html)
                    published = True
            finally:
                tmp_nb.unlink(missing_ok=True)
            if failed is not None:
                outcome.status = "failed"
                outcome.error = f"{name}: {short_error(failed)}"
                # "failed" links the notebook's report (with the error) on the index; without one, nothing
                mark([name], "failed" if published else "failed to start")
                mark(NOTEBOOKS[i + 1:], "not run")
                break
            rf.write_json(stamp, {"fingerprint": fp, "finished": time.time(),
                                  "files": file_stats(run_dir, (f"{name}.ipynb", *NOTEBOOK_OUTPUTS[name]))})
            mark([name], "ran", "done")
        else:
            outcome.status = "ok"
        summary_path = rf.run_file(run_dir, rf.SUMMARY)
        if outcome.status == "ok" and summary_path.exists():
            outcome.summary = rf.read_json(summary_path)
        outcome.seconds = time.perf_counter() - start
        write_status(run_dir, outcome)
    return outcome


@contextlib.contextmanager
def kernel_options() -> Iterator[dict]:
    """Options for papermill's kernel. Its own log is kept to critical messages (jupyter_client interrupts
    every kernel before shutting it down, which ipykernel logs as an error; notebook errors are in the
    notebook). On POSIX it talks to the kernel over Unix sockets in a private temporary folder: no open
    TCP ports, and no warning from ipykernel about unencrypted TCP."""
    options: dict[str, Any] = {"extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}
    if os.name != "posix":
        yield options
        return
    import tempfile

    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="fandom-kernel-") as folder:
        if len(folder) <= 80:  # Unix socket paths are short
            options["config"] = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})
        yield options


def stamp_matches(stamp: Path, fingerprint: str) -> bool:
    """Whether a notebook's stamp records this fingerprint (an unreadable stamp does not)."""
    try:
        return json.loads(stamp.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError, AttributeError):
        return False


def file_stats(run_dir: Path, names: Iterable[str]) -> dict[str, list[int]]:
    """Size and modification time (ns) of each of these files that exists in the run folder."""
    stats = {}
    for name in names:
        with contextlib.suppress(OSError):
            st = (run_dir / name).stat()
            stats[name] = [st.st_size, st.st_mtime_ns]
    return stats


def files_replaced(run_dir: Path, stamp: Path) -> list[str]:
    """The files a notebook's stamp records that have since been replaced, changed or removed."""
    try:
        recorded = json.loads(stamp.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["its record of its files"]
    now = file_stats(run_dir, recorded)
    return [name for name, stat in recorded.items() if now.get(name) != stat]


def short_error(e: BaseException) -> str:
    """The last line of an execution error (the exception's own message), trimmed."""
    name = getattr(e, "ename", type(e).__name__)
    value = str(getattr(e, "evalue", e)).strip().splitlines()
    return f"{name}: {value[-1] if value else ''}"[:1000]


# ---------------------------------------------------------------- executors


def check_scheduler_reachable(scheduler: str, timeout: float = 10) -> None:
    """ParameterError unless a TCP connection to the scheduler's host and port opens (before any Dask
    client exists: a client that cannot connect retries, then complains again when it is collected)."""
    import socket

    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location, 8786)
    except (ValueError, TypeError) as e:
        raise ParameterError(f"--scheduler {scheduler}: not a scheduler address ({e}); "
                             "give one like tcp://host:8786") from None
    if scheme not in ("tcp", "tls"):
        return  # other transports (inproc, ucx): let Dask try
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise ParameterError(f"--scheduler {scheduler}: cannot reach the Dask scheduler at {host}:{port} "
                             f"({e.strerror or e}); check the address, or leave out --scheduler to run on "
                             "this machine") from None


def connect_client(scheduler: str, timeout: float = 10) -> Any:
    """A Dask client of the scheduler, or ParameterError within timeout + 5 s when what answers at the
    address is not a Dask scheduler (a client can wait there for much longer, or fail deep inside)."""
    import sys

    from distributed import Client

    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = Client(scheduler, timeout=timeout, set_as_default=False)
        except BaseException as e:  # whatever a non-scheduler makes the client raise
            box["error"] = e

    worker = threading.Thread(target=connect, name="dask-connect", daemon=True)
    worker.start()
    worker.join(timeout + 5)
    if "client" in box:
        return box["client"]
    previous_hook = sys.unraisablehook

    def quiet_client_del(unraisable: Any) -> None:  # the failed client complains again when collected
        if "Client.__del__" not in getattr(unraisable.object, "__qualname__", ""):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_client_del
    reason = short_error(box["error"]) if "error" in box else f"no answer in {timeout + 5:.0f} s"
    raise ParameterError(f"--scheduler {scheduler}: no Dask scheduler answers there ({reason}); check the "
                         "address, or leave out --scheduler to run on this machine")


@contextlib.contextmanager
def make_executor(jobs: int = 1, scheduler: str | None = None, timeout: float = 10) -> Iterator[cf.Executor]:
    """A concurrent.futures executor: local threads (each notebook runs in its own kernel process), or a
    Dask distributed cluster at `scheduler` through Dask's own Executor. The Dask client is closed on exit;
    a scheduler that cannot be reached is a ParameterError."""
    if not scheduler:
        with cf.ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="run_all") as pool:
            yield pool
        return
    check_scheduler_reachable(scheduler, timeout)
    client = connect_client(scheduler, timeout)
    try:
        with client.get_executor(pure=False) as pool:
            yield pool
    finally:
        client.close()


def kill_kernels() -> int:
    """Kill the notebook kernels this process started (they run in sessions of their own, so Ctrl-C does
    not reach them); return how many."""
    import psutil

    killed = 0
    for child in psutil.Process().children(recursive=False):
        try:
            if any("ipykernel" in part for part in child.cmdline()):
                child.kill()
                killed += 1
        except psutil.Error:
            pass
    return killed


# ---------------------------------------------------------------- index page


def headline(summary: dict | None) -> str:
    """One line of headline numbers for a target from its summary.json."""
    if not summary:
        return ""
    gate = summary.get("quality_gate") or {}
    worth = summary.get("worth_per_action") or {}
    best = max((k for k, v in worth.items() if v is not None), key=lambda k: worth[k], default=None)
    from .schema import ACTION_LABELS

    used = (summary.get("rows") or {}).get("used")
    parts = [f"{used:,} fans"] if isinstance(used, int) else []
    if gate:
        verdict = "passed" if gate.get("passed") else "FAILED"
        rse = gate.get("rse")
        parts.append(f"quality gate {verdict}" + (f" (RSE {rse:.3f})" if isinstance(rse, (int, float)) else ""))
    if best:
        parts.append(f"most valuable per action: {ACTION_LABELS.get(best, best)} ({worth[best]:+.3g})")
    return "; ".join(parts)


def index_sentences(summary: dict | None) -> list[str]:
    """The index page's short verdicts for a target: the quality gate in a line, and the truth check if any."""
    if not summary:
        return []
    out = []
    gate = summary.get("quality_gate") or {}
    rse = gate.get("rse")
    if isinstance(rse, (int, float)) and rse == rse:
        explained = explained_share(rse)
        if gate.get("passed"):
            out.append(f"The model explains {explained} of the outcome's variation on held-out fans: credit can be trusted.")
        else:
            out.append(f"WARNING: the model explains only {explained} of the outcome's variation on held-out fans; "
                       "treat the figures as indicative (see the report).")
    out += [s for s in summary.get("sentences", []) if s.startswith("Against the known truth")]
    return out


def status_text(o: TargetOutcome) -> str:
    """The index page's status cell for one target (HTML)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(o.finished)) if o.finished else ""
    if o.status == "ok":
        text = "ok"
    elif o.status == "failed":
        text = f"FAILED: {html.escape(o.error)}"
    elif o.status == "interrupted":
        text = "INTERRUPTED before it finished: rerun run_all.py to complete it (finished notebooks are skipped)"
    else:
        text = ("NOT FINISHED: running, or stopped before it finished; if no run_all.py is running, "
                "rerun it to complete this target")
    if o.earlier and when:
        text += f" <span class=muted>(earlier run, {when})</span>"
    return text


def write_index(out_dir: str | Path, outcomes: list[TargetOutcome]) -> Path:
    """Write <out>/index.html: every target's status, headline numbers and links to its current reports.

    Targets of this run come first; targets with a run folder from an earlier run follow, marked so.
    A report is linked only when it belongs to the target's last run (ran, skipped or failed in it)."""
    out_dir = Path(out_dir)
    listed = {o.target for o in outcomes}
    earlier = []
    for t in TARGETS:
        if t not in listed and (out_dir / t / STATE_DIR / STATUS_FILE).exists():
            o = read_status(out_dir / t)
            if o is not None:
                o.earlier = True
                earlier.append(o)
    rows = []
    for o in [*outcomes, *earlier]:
        current = {n for n, what in o.notebooks.items() if what in ("ran", "skipped", "failed")}
        links = " · ".join(
            f'<a href="{html.escape(o.target)}/{n}.html">{NOTEBOOK_TITLES[n]}</a>'
            if n in current and (out_dir / o.target / f"{n}.html").exists()
            else f"<span class=muted>{NOTEBOOK_TITLES[n]}</span>"
            for n in NOTEBOOKS
        )
        summary = o.summary if o.status == "ok" else None
        sentences = "".join(f"<li>{html.escape(s)}</li>" for s in index_sentences(summary))
        css = o.status if o.status in ("ok", "failed") else "unfinished"
        rows.append(
            f"<tr class='{css}'><td><b>{html.escape(TARGET_LABELS.get(o.target, o.target))}</b>"
            f"<br><code>{html.escape(o.target)}</code></td><td>{status_text(o)}</td>"
            f"<td>{html.escape(headline(summary))}<ul>{sentences}</ul></td><td>{links}</td></tr>"
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Fan action contributions: reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:75em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.5em;vertical-align:top;text-align:left}}tr.failed{{background:#fee}}
tr.unfinished{{background:#ffd}}.muted{{color:#999}}ul{{margin:.3em 0 0 1em;padding:0;font-size:.9em}}</style>
</head><body>
<h1>How much of a later outcome does each fan action earn?</h1>
<p>One report per outcome ("reward target"), each in four parts. Generated {time.strftime('%Y-%m-%d %H:%M')}.
Contributions per fan are in <code>&lt;target&gt;/contributions.parquet</code>, key figures in
<code>&lt;target&gt;/summary.json</code>.</p>
<table><tr><th>Outcome</th><th>Status</th><th>Headline</th><th>Reports</th></tr>{''.join(rows)}</table>
</body></html>"""
    return rf.write_atomic(out_dir / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))


# ---------------------------------------------------------------- running every target


def run_all(
    targets: list[str],
    out_dir: str | Path,
    params: dict,
    jobs: int = 1,
    force: bool = False,
    scheduler: str | None = None,
    progress: bool = True,
) -> list[TargetOutcome]:
    """Run every target (in parallel where asked), keeping index.html up to date as targets finish.

    Ctrl-C (KeyboardInterrupt) stops promptly: queued targets never start, running notebooks' kernels
    are killed and their partial outputs dropped, and those targets come back as "interrupted"."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir, pattern=".index.html.*.part", older_than=60)  # from a killed run, not a running one
    declared = declared_parameters()
    params = dict(params)
    if params.get("data_path"):
        params["data_path"] = str(Path(params["data_path"]).expanduser().resolve())
    data_fp = file_fingerprint(params["data_path"]) if params.get("data_path") else "synthetic"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = scheduler is None
    threads = max(1, cores // max(1, min(jobs, len(targets)))) if local else None
    _STOP.clear()
    run_id = f"{os.getpid()}-{time.time_ns()}"
    outcomes: dict[str, TargetOutcome] = {}
    futures: dict[cf.Future, str] = {}
    bar = None
    lock = threading.Lock()

    def on_step(target: str, name: str, what: str) -> None:
        with lock:
            if bar is not None:
                bar.set_postfix_str(f"{target[:28]} {name}: {what}")
                bar.update(1)

    def collect(fut: cf.Future) -> None:
        t = futures[fut]
        if fut.cancelled():  # never started: its folder is as the last run left it
            outcomes[t] = TargetOutcome(t, "interrupted", {n: "not run" for n in NOTEBOOKS})
            return
        try:
            outcomes[t] = fut.result()
        except Exception as e:  # a crash outside the notebooks (disk full, lost worker) fails one target
            outcomes[t] = TargetOutcome(t, "failed", error=short_error(e))

    def stop() -> None:
        """Stop promptly after Ctrl-C; safe to repeat if another signal interrupts it."""
        nonlocal bar
        _STOP.set()
        logging.getLogger("papermill").setLevel(logging.CRITICAL)  # "kernel died": we killed it
        for fut in futures:
            fut.cancel()
        with lock:
            if bar is not None:
                bar.close()
                bar = None
        stop_running(futures, local)
        for fut, t in futures.items():
            if t not in outcomes:
                if fut.done():
                    collect(fut)
                else:  # still running on a Dask worker, or a kernel that would not die
                    outcomes[t] = TargetOutcome(t, "interrupted")
        for t in targets:  # not even submitted
            outcomes.setdefault(t, TargetOutcome(t, "interrupted", {n: "not run" for n in NOTEBOOKS}))

    saved_threads = os.environ.get("FANDOM_THREADS")
    saved_log_level = logging.getLogger("papermill").level
    if threads is not None:
        os.environ["FANDOM_THREADS"] = str(threads)
    try:
        with make_executor(jobs, scheduler) as pool:
            try:
                pending = {t: TargetOutcome(t, "running", finished=time.time()) for t in targets}
                write_index(out_dir, [pending[t] for t in targets])
                if progress:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=len(targets) * len(NOTEBOOKS), unit="notebook", desc=out_dir.name,
                               dynamic_ncols=True)
                for t in targets:
                    futures[pool.submit(run_target, t, str(out_dir), params, declared, force,
                                        on_step if local else None, data_fp, threads, run_id)] = t
                waiting = set(futures)
                while waiting:
                    # locally each notebook moves the bar as it ends; a Dask worker cannot call back, so
                    # the bar follows the status files the workers write after every notebook
                    done, waiting = cf.wait(waiting, timeout=None if local or bar is None else 1.0,
                                            return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        collect(fut)
                    if done:
                        write_index(out_dir, [outcomes.get(t, pending[t]) for t in targets])
                    if bar is not None and not local:
                        follow_workers(bar, out_dir, targets, outcomes, run_id)
            except KeyboardInterrupt:
                while True:
                    try:
                        stop()
                        break
                    except KeyboardInterrupt:  # Ctrl-C again (or timeout's double SIGTERM): keep stopping
                        continue
    finally:
        with lock:
            if bar is not None:
                bar.close()
                bar = None
        logging.getLogger("papermill").setLevel(saved_log_level)
        if threads is not None:
            if saved_threads is None:
                os.environ.pop("FANDOM_THREADS", None)
            else:
                os.environ["FANDOM_THREADS"] = saved_threads
    ordered = [outcomes[t] for t in targets]
    write_index(out_dir, ordered)
    return ordered


def follow_workers(bar: Any, out_dir: Path, targets: list[str], outcomes: dict[str, TargetOutcome],
                   run_id: str) -> None:
    """Move the progress bar to the notebooks the Dask workers have finished, from their status files."""
    count, last = 0, ""
    for t in targets:
        o = outcomes.get(t)
        if o is None:
            o = read_status(out_dir / t)
            if o is None or o.run_id != run_id:  # not started yet (the file is from an earlier run)
                continue
        count += len(o.notebooks)
        if o.notebooks and (t not in outcomes or not last):
            name, what = list(o.notebooks.items())[-1]
            last = f"{t[:28]} {name}: {what}"
    if count > bar.n:
        if last:
            bar.set_postfix_str(last, refresh=False)
        bar.update(count - bar.n)


def stop_running(futures: dict[cf.Future, str], local: bool, grace: float = 30.0) -> None:
    """After an interrupt: kill the running kernels until every local target has stopped (a second
    Ctrl-C is ignored meanwhile). Dask targets are cancelled; a task already running on a remote
    worker may run to its end, writing its outputs atomically."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            kill_kernels()
            running = [f for f in futures if not f.done()]
            if not running or not local and all(f.cancelled() for f in futures if not f.done()):
                return
            cf.wait(running, timeout=0.5)
        except KeyboardInterrupt:
            continue
