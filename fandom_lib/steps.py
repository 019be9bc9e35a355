"""One function per notebook step; each reads and writes its artefacts in the target's run folder."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import runfiles as rf
from .analysis import agreement, mean_contributions, truth_recovery, worth_table
from .loading import DataError, load_table
from .schema import ACTIONS, ID_COLUMNS, TARGET_LABELS, canonical_target
from .sequences import state_columns_present, table_to_arrays
from .synthetic import generate, true_contributions

if TYPE_CHECKING:  # torch and captum load only in the steps that need them: notebook 01 starts fast
    from .training import TrainConfig, TrainResult

SYNTHETIC_DEFAULT_ROWS = 50_000
MAX_SAMPLES = 20  # fans notebook 03 can show
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_run_dir(run_dir: str, target: str) -> Path:
    """The target's run folder: as given, or <project>/reports/<target> when empty."""
    return Path(run_dir) if run_dir else PROJECT_ROOT / "reports" / canonical_target(target)


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Hold back a logger's warnings for a while (what they say is shown another way)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass
class Prepared:
    """The validated table for one target and what was done to get it."""

    table: pd.DataFrame
    info: dict
    repairs: pd.DataFrame


def prepare_data(run_dir: str | Path, target: str, data_path: str = "", rows: int = 0, seed: int = 0) -> Prepared:
    """Load (or generate), validate and subsample the table; write prepared.parquet, prep.json (and truth)."""
    target = canonical_target(target)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rows < 0:
        raise ValueError(f"rows must be 0 (all) or a positive number, not {rows}")
    synthetic = not data_path
    if synthetic:
        n = rows or SYNTHETIC_DEFAULT_ROWS
        table = generate(n, seed)
        source, rows_in = f"synthetic default ({n:,} rows, seed {seed})", n
        repairs: list[dict] = []
    else:
        with quiet_logger("fandom_lib"):  # the report shows every repair in its own table
            table, log = load_table(data_path, target)
        source, repairs, rows_in = str(data_path), log.to_records(), len(table) + log.rows_dropped
    rows_after_checks = len(table)
    if not synthetic and rows:
        if rows > len(table):
            raise DataError(
                f"{data_path}: {rows:,} rows asked for but only {len(table):,} usable rows remain "
                f"after checks; use rows=0 for all of them or a smaller number"
            )
        picked = np.random.default_rng(seed).choice(len(table), size=rows, replace=False)
        table = table.iloc[np.sort(picked)]  # a seeded sample, in the file's own row order
    have, missing = state_columns_present(table)
    keep = [c for c in ID_COLUMNS if c in table.columns] + have + list(ACTIONS) + [target]
    prepared = table[keep]
    rf.write_parquet(prepared, rf.run_file(run_dir, rf.PREPARED))
    if synthetic:
        rf.write_parquet(true_contributions(table, target), rf.run_file(run_dir, rf.TRUTH))
    info = {
        "target": target,
        "target_label": TARGET_LABELS[target],
        "source": source,
        "data_path": data_path,
        "synthetic": synthetic,
        "seed": seed,
        "rows_asked": rows,
        "rows_in_file": rows_in,
        "rows_after_checks": rows_after_checks,
        "rows_used": len(prepared),
        "repairs": repairs,
        "state_columns": have,
        "missing_state_columns": missing,
    }
    rf.write_json(rf.run_file(run_dir, rf.PREP_INFO), info)
    return Prepared(prepared, info, repairs_table(info["repairs"]))


def load_prepared(run_dir: str | Path) -> Prepared:
    """Read what prepare_data wrote."""
    info = rf.read_json(rf.run_file(run_dir, rf.PREP_INFO))
    table = pd.read_parquet(rf.run_file(run_dir, rf.PREPARED))
    return Prepared(table, info, repairs_table(info["repairs"]))


def repairs_table(records: list[dict]) -> pd.DataFrame:
    """The repair log as the report shows it: problem, column (blank for the whole table), rows, action."""
    table = pd.DataFrame(records, columns=["problem", "column", "rows", "action"])
    return table.fillna({"column": ""})


def train_step(run_dir: str | Path, config: TrainConfig, progress: bool = False) -> TrainResult:
    """Train on the prepared rows; write model.pt and training.json."""
    from .training import save_model, train_return_model

    prep = load_prepared(run_dir)
    arrays = table_to_arrays(prep.table, prep.info["target"], prep.info["state_columns"])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, desc="training (epochs)", unit="epoch")
    result = train_return_model(
        arrays, config, on_epoch=(lambda row: (bar.update(1), bar.set_postfix(val_rse=f"{row['val_rse']:.3f}"))) if bar else None
    )
    if bar:
        bar.close()
    save_model(rf.run_file(run_dir, rf.MODEL), result)
    rf.write_json(
        rf.run_file(run_dir, rf.TRAINING_INFO),
        {
            "config": asdict(result.config),  # "auto" loss as resolved
            "history": result.history,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "seconds": result.seconds,
            "train_rows": len(result.train_rows),
            "validation_rows": len(result.val_rows),
        },
    )
    return result


def training_words(result: TrainResult) -> str:
    """One sentence on how training went."""
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    stopped = "stopped early" if len(result.history) < result.config.epochs else "ran every epoch"
    return (
        f"Trained on {len(result.train_rows):,} fans, judged on {len(result.val_rows):,} held-out fans: "
        f"{len(result.history)} epochs in {result.seconds:.0f} s ({stopped}); the best held-out fit came at epoch "
        f"{result.best_epoch}, with a relative squared error of {best['val_rse']:.3f}. Per-fan error: "
        f"{'Poisson deviance' if result.config.loss == 'poisson' else 'squared error'}."
    )


def redistribute_step(
    run_dir: str | Path, method: str = "averaged", n_orders: int = 8, return_correction: bool = False, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Redistribute every row's return (chosen method and the reference order); write both tables."""
    from .redistribution import QUALITY_THRESHOLD, quality_gate, redistribute
    from .training import load_model

    prep = load_prepared(run_dir)
    result = load_model(rf.run_file(run_dir, rf.MODEL))
    arrays = table_to_arrays(prep.table, prep.info["target"], prep.info["state_columns"])
    held_out = np.zeros(len(arrays.returns), bool)
    held_out[result.val_rows] = True
    start = time.perf_counter()
    main = redistribute(result, arrays, method, n_orders, seed, return_correction)
    seconds = time.perf_counter() - start
    reference = redistribute(result, arrays, "reference", 1, seed, return_correction)
    for frame in (main, reference):
        frame["held_out"] = held_out
    rf.write_parquet(main, rf.run_file(run_dir, rf.CONTRIBUTIONS))
    rf.write_parquet(reference, rf.run_file(run_dir, rf.CONTRIBUTIONS_REFERENCE))
    gate = quality_gate(main.loc[held_out, "return"], main.loc[held_out, "prediction"], QUALITY_THRESHOLD)
    info = rf.read_json(rf.run_file(run_dir, rf.TRAINING_INFO))
    info.update(
        redistribution={"method": method, "n_orders": n_orders, "return_correction": return_correction,
                        "seed": seed, "seconds": seconds},
        quality_gate=gate,
    )
    rf.write_json(rf.run_file(run_dir, rf.TRAINING_INFO), info)
    return main, reference


@dataclass
class Run:
    """Everything a finished training step left in a run folder."""

    prepared: Prepared
    training: dict
    contributions: pd.DataFrame
    reference: pd.DataFrame
    truth: pd.DataFrame | None

    @property
    def target(self) -> str:
        return self.prepared.info["target"]

    @property
    def target_label(self) -> str:
        return self.prepared.info["target_label"]


def load_run(run_dir: str | Path) -> Run:
    """Read the prepared data, training info, contributions and (synthetic only) the truth."""
    truth_path = rf.run_file(run_dir, rf.TRUTH)
    prep = load_prepared(run_dir)
    return Run(
        prep,
        rf.read_json(rf.run_file(run_dir, rf.TRAINING_INFO)),
        pd.read_parquet(rf.run_file(run_dir, rf.CONTRIBUTIONS)),
        pd.read_parquet(rf.run_file(run_dir, rf.CONTRIBUTIONS_REFERENCE)),
        pd.read_parquet(truth_path) if prep.info["synthetic"] and truth_path.exists() else None,
    )


def pick_samples(run: Run, n: int = 3, seed: int = 0) -> pd.Index:
    """A few fans worth looking at: the most active, a typical active one, and a random one."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n_samples={n}: show between 1 and {MAX_SAMPLES} fans (each gets three panels)")
    counts = run.prepared.table.loc[run.contributions.index, list(ACTIONS)]
    kinds = (counts > 0).sum(axis=1)
    rng = np.random.default_rng(seed)
    chosen: list = []
    for pool in (kinds[kinds >= 5].index, kinds[kinds.between(2, 4)].index, kinds.index):
        pool = [i for i in pool if i not in chosen]
        if pool and len(chosen) < n:
            chosen.append(pool[int(rng.integers(len(pool)))])
    while len(chosen) < min(n, len(kinds)):
        rest = [i for i in kinds.index if i not in chosen]
        chosen.append(rest[int(rng.integers(len(rest)))])
    return pd.Index(chosen)


def agreement_words(table: pd.DataFrame, name: str) -> str:
    """One sentence on how well another method's per-row contributions agree with the LSTM's."""
    corr = table["correlation"].dropna()
    if corr.empty:
        return f"{name}: no action varies enough to compare."
    level = "agree well" if corr.median() >= 0.8 else "agree in part" if corr.median() >= 0.5 else "disagree"
    if level == "agree well" and corr.min() < 0.5:
        level = "agree well on most actions, not on all"
    return (
        f"{name} and the LSTM redistribution {level}: median per-fan correlation {corr.median():.2f} "
        f"over the actions (lowest {corr.min():.2f}, for {corr.idxmin()})."
    )


@dataclass
class Analysis:
    """What notebook 04 shows and summary.json records."""

    worth: pd.DataFrame
    means: pd.DataFrame
    order_agreement: pd.DataFrame
    ig_agreement: pd.DataFrame
    additive_agreement: pd.DataFrame
    truth: pd.DataFrame | None
    gate: dict
    sentences: list[str]
    summary: dict


def analyse_step(run_dir: str | Path, ig_rows: int = 2000, seed: int = 0, parameters: dict | None = None) -> Analysis:
    """Worth table, order sensitivity, cross-checks and (synthetic) truth recovery; write summary.json."""
    from .crosscheck import additive_model, integrated_gradients
    from .redistribution import quality_gate
    from .training import load_model

    run = load_run(run_dir)
    prep, contrib = run.prepared, run.contributions
    arrays = table_to_arrays(prep.table, run.target, prep.info["state_columns"])
    result = load_model(rf.run_file(run_dir, rf.MODEL))
    worth = worth_table(prep.table, contrib, run.target_label)
    rng = np.random.default_rng(seed)
    ig_pos = np.sort(rng.choice(len(contrib), min(ig_rows, len(contrib)), replace=False))
    ig = integrated_gradients(result, arrays, ig_pos, seed=seed)
    additive, additive_pred = additive_model(arrays, result.train_rows)
    order_agreement = agreement(contrib, run.reference, "reference order")
    ig_agreement = agreement(contrib.iloc[ig_pos], ig, "integrated gradients")
    additive_agreement = agreement(contrib, additive, "additive model")
    means = pd.DataFrame(
        {
            "LSTM, averaged over orders": mean_contributions(contrib),
            "LSTM, reference order": mean_contributions(run.reference),
            "integrated gradients": mean_contributions(ig),
            "additive model": mean_contributions(additive),
        }
    )
    truth = None
    if run.truth is not None:
        truth = truth_recovery(contrib, run.truth)
        means["truth"] = mean_contributions(run.truth.loc[contrib.index])
    gate = run.training["quality_gate"]
    held = contrib["held_out"].to_numpy()
    additive_gate = quality_gate(contrib["return"].to_numpy()[held], additive_pred[held])
    sentences = [
        gate["message"],
        agreement_words(ig_agreement, "Integrated gradients on the same model"),
        agreement_words(additive_agreement, "A simple additive model"),
        f"The additive model's held-out relative squared error is {additive_gate['rse']:.3f} "
        f"(the LSTM's: {gate['rse']:.3f}).",
        "Credit from the reference notebook's fixed order differs from the order-averaged credit by "
        f"{order_agreement['mean absolute difference'].mean():.3g} {run.target_label} per fan and action on "
        "average.",
    ]
    if prep.info["missing_state_columns"]:
        sentences.append(
            f"The table lacks {len(prep.info['missing_state_columns'])} of the step-0 state columns "
            f"(for example {prep.info['missing_state_columns'][0]}); the baseline is estimated without them, "
            "so actions may take credit that belongs to the fan's earlier activity."
        )
    if truth is not None:
        nz = truth[truth["mean (truth)"].abs() > 1e-12]
        sentences.append(
            f"Against the known truth of the synthetic data: per-fan correlation {nz['correlation'].min():.2f} "
            f"to {nz['correlation'].max():.2f} over the actions with an effect; the sign of the mean "
            f"contribution is right for {int(truth['sign right'].sum())} of 8 actions."
        )
    summary = {
        "target": run.target,
        "target_label": run.target_label,
        # the values the artefacts were made with (a notebook rerun by hand may have changed some)
        "parameters": {**(parameters or {}), "data_path": prep.info["data_path"],
                       "rows": prep.info.get("rows_asked", (parameters or {}).get("rows", 0)),
                       "seed": run.training["config"]["seed"], "epochs": run.training["config"]["epochs"]},
        "source": prep.info["source"],
        "synthetic": prep.info["synthetic"],
        "rows": {
            "in_file": prep.info["rows_in_file"],
            "used": prep.info["rows_used"],
            "train": run.training["train_rows"],
            "held_out": run.training["validation_rows"],
        },
        "repairs": prep.info["repairs"],
        "missing_state_columns": prep.info["missing_state_columns"],
        "training": {k: run.training[k] for k in ("config", "best_epoch", "epochs_run", "seconds")},
        "redistribution": run.training["redistribution"],
        "quality_gate": gate,
        "mean_contribution": mean_contributions(contrib),
        "worth_per_action": worth["worth per action"].to_dict(),
        "order_sensitivity": order_agreement.to_dict("index"),
        "crosschecks": {
            "integrated_gradients": ig_agreement.to_dict("index"),
            "additive_model": additive_agreement.to_dict("index"),
            "additive_model_rse": additive_gate["rse"],
        },
        "truth": truth.to_dict("index") if truth is not None else None,
        "sentences": sentences,
    }
    rf.write_json(rf.run_file(run_dir, rf.SUMMARY), summary)
    return Analysis(worth, means, order_agreement, ig_agreement, additive_agreement, truth, gate, sentences, summary)
