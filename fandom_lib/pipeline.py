"""Running the four notebooks per target: parameter checks, papermill execution, HTML rendering,
skipping unchanged work, atomic outputs, and the index page. `run_all.py` is its command line."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import html
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import runfiles as rf
from .schema import TARGET_LABELS, TARGETS, canonical_target

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS: tuple[str, ...] = (
    "01_data_prep",
    "02_training",
    "03_sample_visualisation",
    "04_contribution_analysis",
)
NOTEBOOK_TITLES = dict(zip(NOTEBOOKS, ("Data preparation", "Training", "Sample fans", "Contribution analysis")))
STATE_DIR = ".state"  # per-notebook fingerprints of the last successful run


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
        raise ParameterError(f"-p {name}={text}: {name} must be {type_name}, e.g. -p {name}=" +
                             {"int": "3", "float": "0.5", "bool": "true"}.get(type_name, "text")) from None


def parse_parameters(pairs: Iterable[str], declared: dict[str, dict[str, dict]]) -> dict[str, Any]:
    """Turn NAME=VALUE strings into typed parameters; reject names no notebook declares."""
    types = {k: v["type"] for nb in declared.values() for k, v in nb.items()}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"-p {pair}: expected NAME=VALUE, e.g. -p epochs=10")
        name, text = pair.split("=", 1)
        name = name.strip()
        if name not in types:
            raise ParameterError(
                f"-p {name}: no notebook declares a parameter {name!r}; known: {', '.join(sorted(types))}"
            )
        out[name] = convert_value(name, text, types[name])
    return out


def check_run_parameters(targets: list[str], params: dict[str, Any]) -> list[str]:
    """Check targets and parameter values before anything runs; return canonical target names."""
    if not targets:
        raise ParameterError("no targets given; choose from: " + ", ".join(TARGETS))
    try:
        canon = [canonical_target(t) for t in targets]
    except ValueError as e:
        raise ParameterError(str(e)) from None
    if len(set(canon)) != len(canon):
        raise ParameterError("a target is given twice: " + ", ".join(targets))
    for name in ("epochs", "hidden", "layers", "batch_size", "n_orders", "n_samples", "patience", "ig_rows"):
        if name in params and params[name] < 1:
            raise ParameterError(f"-p {name}={params[name]}: {name} must be at least 1")
    if params.get("rows", 0) < 0:
        raise ParameterError(f"-p rows={params['rows']}: rows must be 0 (all) or positive")
    for name in ("learning_rate",):
        if name in params and not params[name] > 0:
            raise ParameterError(f"-p {name}={params[name]}: {name} must be positive")
    choices = {"method": ("averaged", "reference"), "train_order": ("random", "reference"),
               "loss": ("squared", "poisson")}
    for name, allowed in choices.items():
        if name in params and params[name] not in allowed:
            raise ParameterError(f"-p {name}={params[name]}: choose one of {', '.join(allowed)}")
    data = params.get("data_path", "")
    if data and not Path(data).exists():
        raise ParameterError(f"--data {data}: no such file; give the path of a .pkl/.pickle/.parquet/.csv table")
    if data and Path(data).is_dir():
        raise ParameterError(f"--data {data}: is a folder; give the path of a table file")
    return canon


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
    status: str = "pending"  # ok | failed
    notebooks: dict[str, str] = field(default_factory=dict)  # name -> ran | skipped | failed | not run
    error: str = ""
    seconds: float = 0.0
    summary: dict | None = None


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
    tmp = rf.atomic_path(html_path)
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html_path)


def notebook_parameters(notebook: str, params: dict, declared: dict[str, dict[str, dict]]) -> dict:
    """The subset of the run's parameters this notebook declares."""
    return {k: v for k, v in params.items() if k in declared[notebook]}


def run_target(
    target: str,
    out_dir: str,
    params: dict,
    declared: dict[str, dict[str, dict]],
    force: bool = False,
    on_step: Callable[[str, str, str], None] | None = None,
) -> TargetOutcome:
    """Run (or skip, when unchanged) the four notebooks for one target, each rendered to HTML."""
    import papermill

    start = time.perf_counter()
    run_dir = Path(out_dir).resolve() / target
    state_dir = run_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    params = {**params, "target": target, "run_dir": str(run_dir)}
    data = params.get("data_path", "")
    data_fp = file_fingerprint(data) if data else "synthetic"
    code_fp = code_fingerprint()
    outcome = TargetOutcome(target)
    previous = ""
    for name in NOTEBOOKS:
        nb_params = notebook_parameters(name, params, declared)
        fp = step_fingerprint(name, nb_params, data_fp, code_fp, previous)
        previous = fp
        out_nb, out_html, stamp = run_dir / f"{name}.ipynb", run_dir / f"{name}.html", state_dir / f"{name}.json"
        done = stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fp
        if done and not force and out_nb.exists() and out_html.exists():
            outcome.notebooks[name] = "skipped"
            if on_step:
                on_step(target, name, "skipped (unchanged)")
            continue
        stamp.unlink(missing_ok=True)
        tmp_nb = rf.atomic_path(out_nb, suffix=".part.ipynb")
        try:
            papermill.execute_notebook(
                str(NOTEBOOK_DIR / f"{name}.ipynb"), str(tmp_nb), parameters=nb_params,
                cwd=str(NOTEBOOK_DIR), progress_bar=False, kernel_name="python3",
            )
            failed = None
        except Exception as e:  # papermill keeps the executed notebook with the error visible
            failed = e
        if tmp_nb.exists():
            os.replace(tmp_nb, out_nb)
            render_html(out_nb, out_html)
        if failed is not None:
            outcome.status, outcome.notebooks[name] = "failed", "failed"
            outcome.error = f"{name}: {short_error(failed)}"
            for later in NOTEBOOKS[NOTEBOOKS.index(name) + 1:]:
                outcome.notebooks[later] = "not run"
            if on_step:
                on_step(target, name, "failed")
            break
        rf.write_json(stamp, {"fingerprint": fp, "finished": time.time()})
        outcome.notebooks[name] = "ran"
        if on_step:
            on_step(target, name, "done")
    else:
        outcome.status = "ok"
    summary_path = rf.run_file(run_dir, rf.SUMMARY)
    if outcome.status == "ok" and summary_path.exists():
        outcome.summary = rf.read_json(summary_path)
    outcome.seconds = time.perf_counter() - start
    return outcome


def short_error(e: BaseException) -> str:
    """The last line of an execution error (the exception's own message), trimmed."""
    name = getattr(e, "ename", type(e).__name__)
    value = str(getattr(e, "evalue", e)).strip().splitlines()
    return f"{name}: {value[-1] if value else ''}"[:400]


# ---------------------------------------------------------------- executors


def make_executor(jobs: int = 1, scheduler: str | None = None) -> cf.Executor:
    """A concurrent.futures executor: local threads (each notebook runs in its own kernel process), or a
    Dask distributed cluster at `scheduler` through Dask's own Executor."""
    if scheduler:
        from distributed import Client

        return Client(scheduler).get_executor()
    return cf.ThreadPoolExecutor(max_workers=max(1, jobs))


# ---------------------------------------------------------------- index page


def headline(summary: dict | None) -> str:
    """One line of headline numbers for a target from its summary.json."""
    if not summary:
        return ""
    gate = summary.get("quality_gate") or {}
    worth = summary.get("worth_per_action") or {}
    best = max((k for k, v in worth.items() if v is not None), key=lambda k: worth[k], default=None)
    from .schema import ACTION_LABELS

    parts = [f"{summary['rows']['used']:,} fans"]
    if gate:
        parts.append(f"quality gate {'passed' if gate.get('passed') else 'FAILED'} (RSE {gate.get('rse', float('nan')):.3f})")
    if best:
        parts.append(f"most valuable per action: {ACTION_LABELS[best]} ({worth[best]:+.3g})")
    return "; ".join(parts)


def write_index(out_dir: str | Path, outcomes: list[TargetOutcome]) -> Path:
    """Write <out>/index.html linking every target's four reports with its status and headline numbers."""
    out_dir = Path(out_dir)
    rows = []
    for o in outcomes:
        links = " · ".join(
            f'<a href="{html.escape(o.target)}/{n}.html">{NOTEBOOK_TITLES[n]}</a>'
            if (out_dir / o.target / f"{n}.html").exists() else f"<span class=muted>{NOTEBOOK_TITLES[n]}</span>"
            for n in NOTEBOOKS
        )
        status = "ok" if o.status == "ok" else f"FAILED: {html.escape(o.error)}"
        sentences = "".join(f"<li>{html.escape(s)}</li>" for s in (o.summary or {}).get("sentences", [])[:1])
        rows.append(
            f"<tr class='{o.status}'><td><b>{html.escape(TARGET_LABELS.get(o.target, o.target))}</b>"
            f"<br><code>{html.escape(o.target)}</code></td><td>{status}</td>"
            f"<td>{html.escape(headline(o.summary))}<ul>{sentences}</ul></td><td>{links}</td></tr>"
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Fan action contributions: reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:75em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.5em;vertical-align:top;text-align:left}}tr.failed{{background:#fee}}
.muted{{color:#999}}ul{{margin:.3em 0 0 1em;padding:0;font-size:.9em}}</style></head><body>
<h1>How much of a later outcome does each fan action earn?</h1>
<p>One report per outcome ("reward target"), each in four parts. Generated {time.strftime('%Y-%m-%d %H:%M')}.
Contributions per fan are in <code>&lt;target&gt;/contributions.parquet</code>, key figures in
<code>&lt;target&gt;/summary.json</code>.</p>
<table><tr><th>Outcome</th><th>Status</th><th>Headline</th><th>Reports</th></tr>{''.join(rows)}</table>
</body></html>"""
    path = out_dir / "index.html"
    tmp = rf.atomic_path(path)
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def run_all(
    targets: list[str],
    out_dir: str | Path,
    params: dict,
    jobs: int = 1,
    force: bool = False,
    scheduler: str | None = None,
    progress: bool = True,
) -> list[TargetOutcome]:
    """Run every target (in parallel where asked), then write the index page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    declared = declared_parameters()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["FANDOM_THREADS"] = str(max(1, cores // max(1, jobs)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(targets) * len(NOTEBOOKS), unit="notebook", desc="reports")

    def on_step(target: str, name: str, what: str) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{target[:28]} {name}: {what}")
            bar.update(1)

    outcomes: dict[str, TargetOutcome] = {}
    local = scheduler is None
    with make_executor(jobs, scheduler) as pool:
        futures = {
            pool.submit(run_target, t, str(out_dir), params, declared, force, on_step if local else None): t
            for t in targets
        }
        for fut in cf.as_completed(futures):
            t = futures[fut]
            try:
                outcomes[t] = fut.result()
            except Exception as e:  # a crash outside the notebooks (disk full, killed kernel) fails one target
                outcomes[t] = TargetOutcome(t, "failed", error=short_error(e))
            if bar is not None and not local:
                bar.update(len(NOTEBOOKS))
    if bar is not None:
        bar.close()
    ordered = [outcomes[t] for t in targets]
    write_index(out_dir, ordered)
    return ordered
