"""Reading and checking the (user, artist) table: every repair is logged, every stop is a DataError.

`read_table` reads a file as it is (pickle, parquet, CSV/TSV, optionally compressed);
`validate_table` checks it against the data contract for one reward target and repairs what can be
repaired safely, recording each repair (what, which column, how many rows, what was done) in a
`RepairLog`; `load_table` does both. Anything that cannot be repaired raises `DataError` with a
message that names the file, the column(s), the rows where relevant and what to do.

Policy (stop = DataError, repair = logged):

- file missing, empty, unknown type, not what its extension says, not a table, no rows: stop
- delimiter other than the extension's, non-UTF-8 text, old pickle needing latin1: repair (read notes)
- unknown target name, missing action or target column, a column given twice: stop
- column names in another case / with spaces, the target's alias spelling: rename
- ids in the row index: copied to columns, the index kept; an index with repeated labels: rows
  labelled by position (named levels kept as columns)
- columns outside the contract: left out of the output, listed in one entry
- action/target values: text like "1,204" or " 7 " parsed; other text treated as missing;
  missing, infinite, negative or above a billion: row dropped; non-integer: rounded (half up)
- state values (segment flags, pre-period counts): missing, infinite, negative, flags other
  than 0/1: set to 0; non-integer counts rounded; True/False flags -> 1/0
- duplicated (user_id, artist_gid): the first occurrence kept, the rest dropped
- fewer than `min_rows` usable rows, a constant or all-missing target: stop
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import difflib
import gzip
import io
import logging
import lzma
import pickle
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from fandom_lib.schema import (
    ACTIONS,
    ID_COLUMNS,
    KNOWN_COLUMNS,
    PRE_PERIOD_COLUMNS,
    SEGMENT_COLUMNS,
    STATE_COLUMNS,
    TARGET_ALIASES,
    TARGETS,
    canonical_target,
)

__all__ = ["DataError", "RepairLog", "read_table", "validate_table", "load_table", "READ_NOTES_KEY"]

logger = logging.getLogger("fandom_lib")

READ_NOTES_KEY = "fandom_read_notes"
"""Key of `DataFrame.attrs` where `read_table` leaves notes on how the file was read."""

DROPPED = "dropped the rows"
"""Start of every RepairLog action that removes rows (what `RepairLog.rows_dropped` adds up)."""

PICKLE_SUFFIXES: tuple[str, ...] = (".pkl", ".pickle")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
CSV_SUFFIXES: tuple[str, ...] = (".csv",)
TSV_SUFFIXES: tuple[str, ...] = (".tsv", ".txt")
COMPRESSIONS: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}
COMPRESSION_MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "bz2": b"BZh",
    "zip": b"PK",
    "xz": b"\xfd7zXZ\x00",
}
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
SUPPORTED_TYPES = (
    ".pkl/.pickle (pandas pickle), .parquet/.pq, .csv, .tsv/.txt (tab-separated), "
    "each optionally compressed as .gz, .bz2, .zip or .xz (e.g. table.pkl.gz, table.csv.bz2)"
)
SAMPLE_BYTES = 64 * 1024
MAX_LISTED = 5
MAX_COUNT = 1e9  # no fan acts a billion times for one artist in a period: larger values are corrupt data
NA_TOKENS: tuple[str, ...] = ("", "nan", "na", "n/a", "null", "none", "<na>", "nat", "-")
THOUSANDS_RE = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
REQUIRED_LABEL = "the eight action columns and the target column"


class DataError(ValueError):
    """A bad input table; the message names the file, the column, the rows and what to do."""


@dataclass
class RepairLog:
    """Repairs made to one table: one entry per (problem, column), each also logged as a warning."""

    source: str
    entries: list[dict] = field(default_factory=list)

    def add(self, problem: str, column: str | None, rows: int, action: str) -> None:
        """Record one repair and log it on the "fandom_lib" logger."""
        entry = {"problem": problem, "column": column, "rows": int(rows), "action": action}
        self.entries.append(entry)
        where = f" [{column}]" if column else ""
        counted = f"; {int(rows)} row{'s' if rows != 1 else ''}" if rows else ""
        logger.warning("%s%s: %s%s; %s", self.source, where, problem, counted, action)

    def to_records(self) -> list[dict]:
        """The entries as a list of plain dicts (copies)."""
        return [dict(e) for e in self.entries]

    def to_frame(self) -> pd.DataFrame:
        """The entries as a table with columns problem, column, rows, action."""
        frame = pd.DataFrame(self.to_records(), columns=["problem", "column", "rows", "action"])
        return frame.astype({"rows": "int64"})

    @property
    def rows_dropped(self) -> int:
        """Total rows removed by repairs (each removed row is counted once, under its first reason)."""
        return sum(e["rows"] for e in self.entries if e["action"].startswith(DROPPED))

    def __len__(self) -> int:
        """Number of entries."""
        return len(self.entries)


# --------------------------------------------------------------------------- reading


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table file (.pkl/.pickle, .parquet, .csv, .tsv/.txt, optionally compressed .gz/.bz2/.zip/.xz) into a DataFrame, untouched.

    How the file was read, where that needed a guess (another delimiter, Latin-1 text, an old
    pickle), is left as a list of strings in ``df.attrs["fandom_read_notes"]``; `validate_table`
    turns them into RepairLog entries. Pickles run code when read: read only files you trust.
    """
    name = str(path)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(
            f"{name}: the file does not exist (working directory: {Path.cwd()}). "
            "Check the path and the file name."
        )
    if p.is_dir():
        raise DataError(f"{name}: this is a folder, not a file. Give the path of the table file.")
    kind, compression = _kind_of(p, name)
    if p.stat().st_size == 0:
        raise DataError(f"{name}: the file is empty (0 bytes). Write the table again, or pick another file.")
    if compression:
        _check_compression(p, compression, name)
    head = _head(p, compression, name)
    if not head:
        raise DataError(f"{name}: the file is empty once decompressed. Write the table again.")
    notes: list[str] = []
    if kind == "pickle":
        df = _read_pickle(p, compression, name, head, notes)
    elif kind == "parquet":
        df = _read_parquet(p, compression, name, head)
    else:
        df = _read_text(p, compression, name, head, notes, "," if kind == "csv" else "\t")
    if df.shape[1] == 0:
        raise DataError(f"{name}: the table has no columns. Check that this is the right file.")
    if len(df) == 0:
        raise DataError(
            f"{name}: the table has a header ({df.shape[1]} columns) but no rows. "
            "Check that the export wrote the data, or pick another file."
        )
    df.attrs[READ_NOTES_KEY] = notes
    return df


def _kind_of(p: Path, name: str) -> tuple[str, str | None]:
    """The table format and the compression named by a file's extensions."""
    outer = p.suffix.lower()
    compression = COMPRESSIONS.get(outer)
    inner = Path(p.stem).suffix.lower() if compression else outer
    for kind, suffixes in (
        ("pickle", PICKLE_SUFFIXES),
        ("parquet", PARQUET_SUFFIXES),
        ("csv", CSV_SUFFIXES),
        ("tsv", TSV_SUFFIXES),
    ):
        if inner in suffixes:
            return kind, compression
    shown = "".join(p.suffixes[-2:]) if compression else (outer or "(none)")
    raise DataError(
        f"{name}: unsupported file type {shown!r}. Supported: {SUPPORTED_TYPES}. "
        "Save the table in one of these formats or rename the file with its true extension."
    )


@contextlib.contextmanager
def _open(p: Path, compression: str | None, name: str) -> Iterator[IO[bytes]]:
    """Open a file for binary reading, decompressing it as its outer extension says."""
    if compression is None:
        with open(p, "rb") as f:
            yield f
    elif compression == "gzip":
        with gzip.open(p, "rb") as f:
            yield f
    elif compression == "bz2":
        with bz2.open(p, "rb") as f:
            yield f
    elif compression == "xz":
        with lzma.open(p, "rb") as f:
            yield f
    else:
        try:
            zf = zipfile.ZipFile(p)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{name}: not a valid zip archive ({exc}). Re-create the archive.") from None
        with zf:
            members = [
                i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")
            ]
            if len(members) != 1:
                listed = ", ".join(i.filename for i in members[:MAX_LISTED]) or "nothing"
                raise DataError(
                    f"{name}: the zip archive must hold exactly one file, it holds {len(members)} "
                    f"({listed}). Put one table per archive, or unzip it and give the table's path."
                )
            with zf.open(members[0]) as f:
                yield f


def _check_compression(p: Path, compression: str, name: str) -> None:
    """Stop if a file named as compressed does not start like one."""
    with open(p, "rb") as f:
        start = f.read(SAMPLE_BYTES)
    if not start.startswith(COMPRESSION_MAGIC[compression]):
        raise DataError(
            f"{name}: the name says {compression}-compressed, but the file holds {_describe_bytes(start)}. "
            "Rename the file with its true extension, or compress it."
        )


def _head(p: Path, compression: str | None, name: str) -> bytes:
    """The first bytes of the (decompressed) content."""
    try:
        with _open(p, compression, name) as f:
            return f.read(SAMPLE_BYTES)
    except DataError:
        raise
    except Exception as exc:  # corrupt compressed stream
        raise DataError(
            f"{name}: could not decompress the file as {compression} ({type(exc).__name__}: {exc}). "
            "The file is damaged or not what its extension says; write it again."
        ) from None


def _describe_bytes(head: bytes) -> str:
    """A plain description of what some bytes look like (for error messages)."""
    if head.startswith(b"PAR1"):
        return "a parquet file"
    for compression, magic in COMPRESSION_MAGIC.items():
        if head.startswith(magic) and compression != "zip":
            return f"{compression}-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (an .xlsx workbook is one)"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Office document (e.g. .xls)"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    if _looks_binary(head):
        return "binary data"
    first = head.decode("utf-8", errors="replace").splitlines()[0][:60] if head.strip() else ""
    return f"text (starting {first!r})"


def _looks_binary(head: bytes) -> bool:
    """True if bytes contain NULs or many control characters, i.e. are not a text table."""
    if b"\x00" in head:
        return True
    controls = sum(head.count(bytes([b])) for b in list(range(0, 9)) + list(range(14, 32)))
    return controls > max(1, len(head) // 100)


def _read_pickle(
    p: Path, compression: str | None, name: str, head: bytes, notes: list[str]
) -> pd.DataFrame:
    """Read a pandas pickle, falling back to a latin1 Unpickler for old ones."""
    try:
        with _open(p, compression, name) as f:
            obj = pd.read_pickle(f, compression=None)
    except Exception as first:
        try:
            with _open(p, compression, name) as f:
                obj = pickle.Unpickler(f, encoding="latin1").load()
        except Exception:
            raise DataError(
                f"{name}: not a readable pandas pickle (the file holds {_describe_bytes(head)}; "
                f"{type(first).__name__}: {first}). Save the table with DataFrame.to_pickle or "
                "to_parquet, or rename the file with its true extension."
            ) from None
        notes.append("old pickle that pandas could not read directly; read with encoding='latin1'")
    if not isinstance(obj, pd.DataFrame):
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}".removeprefix("builtins.")
        raise DataError(
            f"{name}: the pickle holds a {kind}, not a pandas DataFrame. "
            "Build the DataFrame (e.g. pd.DataFrame(obj)) and save it with DataFrame.to_pickle."
        )
    return obj


def _read_parquet(p: Path, compression: str | None, name: str, head: bytes) -> pd.DataFrame:
    """Read a parquet file (decompressed into memory first if it is compressed)."""
    try:
        if compression:
            with _open(p, compression, name) as f:
                return pd.read_parquet(io.BytesIO(f.read()))
        return pd.read_parquet(p)
    except Exception as exc:
        raise DataError(
            f"{name}: not a readable parquet file (the file holds {_describe_bytes(head)}; "
            f"{type(exc).__name__}: {exc}). Write it with DataFrame.to_parquet, or rename the "
            "file with its true extension."
        ) from None


def _read_text(
    p: Path, compression: str | None, name: str, head: bytes, notes: list[str], default_sep: str
) -> pd.DataFrame:
    """Read a delimited text table, detecting the delimiter and the encoding."""
    if _looks_binary(head):
        raise DataError(
            f"{name}: not a text table: the file holds {_describe_bytes(head)}. "
            "Rename it with its true extension, or export the table as CSV again."
        )
    encoding = "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) < SAMPLE_BYTES)
    except UnicodeDecodeError:
        encoding, text = "latin-1", head.decode("latin-1")
    sep = _sniff_delimiter(text, default_sep, truncated=len(head) == SAMPLE_BYTES)
    if sep != default_sep:
        notes.append(f"columns separated by {_sep_name(sep)}, not {_sep_name(default_sep)}; read with {_sep_name(sep)}")
    for attempt in (encoding, "latin-1"):
        try:
            with _open(p, compression, name) as f:
                df = pd.read_csv(f, sep=sep, encoding=attempt, low_memory=False)
            break
        except UnicodeDecodeError:
            if attempt == "latin-1":
                raise DataError(f"{name}: the text could not be decoded. Save it as UTF-8.") from None
            continue
        except pd.errors.EmptyDataError:
            raise DataError(f"{name}: the file holds no columns (only blank lines). Pick another file.") from None
        except Exception as exc:
            raise DataError(
                f"{name}: could not be read as a table with delimiter {_sep_name(sep)} "
                f"({type(exc).__name__}: {exc}). Check that every line has the same number of fields "
                "and that quotes are closed."
            ) from None
    if attempt == "latin-1":
        notes.append("text is not UTF-8; read as Latin-1")
    return df


def _sniff_delimiter(text: str, default: str, *, truncated: bool) -> str:
    """The candidate delimiter that splits the first lines into the most consistent fields."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off by the sample
    lines = lines[:50]
    if not lines:
        return default
    best, best_score = default, (-1.0, 0)
    for sep in (default,) + tuple(d for d in DELIMITERS if d != default):
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        except csv.Error:
            continue
        if counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts) / len(counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _sep_name(sep: str) -> str:
    """A readable name for a delimiter."""
    return {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}.get(sep, repr(sep))


# --------------------------------------------------------------------------- validating


def validate_table(
    df: pd.DataFrame, target: str, source: str = "<table>", *, min_rows: int = 50
) -> tuple[pd.DataFrame, RepairLog]:
    """Check and repair a table for one target; return the analysable rows (original index kept) and the repair log."""
    target = _target_or_stop(target, source)
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got a {type(df).__name__}.")
    log = RepairLog(source)
    for note in df.attrs.get(READ_NOTES_KEY) or []:
        log.add(str(note), None, 0, "read the file accordingly")
    if isinstance(df.columns, pd.MultiIndex):
        raise DataError(
            f"{source}: the table has {df.columns.nlevels} header rows (MultiIndex columns). "
            "Flatten them to single names (one header line) and save again."
        )
    df = _ids_from_index(df, log)
    df = _normalise_columns(df, target, source, log)
    n = len(df)
    if n == 0:
        raise DataError(f"{source}: the table has no rows. Pick a file that holds the data.")
    index = df.index
    alive = np.ones(n, dtype=bool)

    if all(c in df.columns for c in ID_COLUMNS):
        ids = df[list(ID_COLUMNS)]
        dup = ids.duplicated(keep="first").to_numpy() & ids.notna().all(axis=1).to_numpy()
        if dup.any():
            log.add(
                f"duplicated ({', '.join(ID_COLUMNS)}) pair {_rows_text(index, dup)}",
                ", ".join(ID_COLUMNS),
                int(dup.sum()),
                f"{DROPPED} (kept the first occurrence of each pair)",
            )
            alive &= ~dup

    required = ACTIONS + (target,)
    values: dict[str, np.ndarray] = {}
    for col in required:
        v = _to_numbers(df[col], col, alive, index, log)
        if not np.isfinite(v[alive]).any():
            what = "target column" if col == target else "action column"
            raise DataError(
                f"{source}: {what} {col!r} has no usable numbers in any of its {int(alive.sum())} rows "
                f"({_examples(df[col])}). Check that the column holds the counts, or fix the file."
            )
        values[col] = v
    for col in required:
        v = values[col]
        for problem, bad in (
            ("missing value", np.isnan(v)),
            ("infinite value", np.isinf(v)),
            ("negative count", v < 0),
            (f"count above {MAX_COUNT:,.0f} (not a real count)", v > MAX_COUNT),
        ):
            hit = bad & alive
            if hit.any():
                log.add(f"{problem} {_rows_text(index, hit)}", col, int(hit.sum()), DROPPED)
                alive &= ~hit
    for col in required:
        values[col] = _round_counts(values[col], col, alive, index, log)

    for col in STATE_COLUMNS:
        if col in df.columns:
            values[col] = _clean_state(df[col], col, alive, index, log)

    usable = int(alive.sum())
    if usable < max(min_rows, 1):
        raise DataError(
            f"{source}: too few rows to train and validate: {usable} usable of {n}; need at least "
            f"{min_rows}. {_drop_summary(log)}Fix the input table, or give one with more rows."
        )
    t = values[target][alive]
    if t.min() == t.max():
        raise DataError(
            f"{source}: target column {target!r} has the same value ({t[0]:g}) in all {usable} usable "
            "rows, so there is nothing to learn. Check the column, or choose another target: "
            f"{', '.join(x for x in TARGETS if x != target)}."
        )

    keep = np.flatnonzero(alive)
    out = df.iloc[keep] if usable < n else df.copy()
    out = out.assign(**{c: v[keep] for c, v in values.items()})
    out.attrs.pop(READ_NOTES_KEY, None)
    return out, log


def load_table(path: str | Path, target: str, *, min_rows: int = 50) -> tuple[pd.DataFrame, RepairLog]:
    """read_table + validate_table."""
    _target_or_stop(target, str(path))
    return validate_table(read_table(path), target, str(path), min_rows=min_rows)


def _target_or_stop(target: str, source: str) -> str:
    """The canonical target name, or a DataError listing the valid ones."""
    key = str(target).strip().lower()
    try:
        return canonical_target(key)
    except ValueError:
        aliases = ", ".join(f"{a!r} for {c!r}" for a, c in TARGET_ALIASES.items())
        raise DataError(
            f"{source}: unknown reward target {target!r}. Choose one of: {', '.join(TARGETS)} "
            f"(also accepted: {aliases})."
        ) from None


def _ids_from_index(df: pd.DataFrame, log: RepairLog) -> pd.DataFrame:
    """Copy ids held in the row index to columns (the index stays: it labels the output rows); a row index
    with repeated labels is replaced by positions, since the output could not be joined back by it."""
    if df.index.has_duplicates:
        repeated = int(df.index.duplicated(keep=False).sum())
        present = {str(c).strip().lower() for c in df.columns}
        ids = [n for n in df.index.names if n is not None and str(n).strip().lower() not in present]
        log.add(
            f"the row index repeats labels: {repeated} rows share a label with another row, e.g. "
            f"{df.index[df.index.duplicated()][0]}",
            None,
            repeated,
            f"rows are labelled by their position in the file, 0..{len(df) - 1}"
            + (f"; the index levels moved to column(s) {', '.join(map(str, ids))}" if ids else ""),
        )
        return (df.reset_index(level=ids) if ids else df).reset_index(drop=True)
    names = [None if n is None else str(n).strip().lower() for n in df.index.names]
    present = {str(c).strip().lower() for c in df.columns}
    copy = [i for i, n in enumerate(names) if n in ID_COLUMNS and n not in present]
    if not copy:
        return df
    ids = pd.DataFrame({names[i]: df.index.get_level_values(i) for i in copy}, index=df.index)
    df = pd.concat([ids, df], axis=1)
    log.add(
        f"ids held in the row index ({', '.join(str(n) for n in df.index.names)})",
        None,
        0,
        "copied to columns " + ", ".join(names[i] for i in copy) + "; the rows keep their index",
    )
    return df


def _normalise_columns(df: pd.DataFrame, target: str, source: str, log: RepairLog) -> pd.DataFrame:
    """Rename columns to the contract's spelling, drop unknown ones, stop on missing or doubled ones."""
    canon = {c.lower(): c for c in KNOWN_COLUMNS}
    aliases = {a.lower(): c for a, c in TARGET_ALIASES.items()}
    original = [str(c) for c in df.columns]
    keys = [c.strip().lower() for c in original]

    direct: dict[str, list[int]] = {}
    alias_hits: dict[str, list[int]] = {}
    unknown: list[int] = []
    for i, k in enumerate(keys):
        if k in canon:
            direct.setdefault(canon[k], []).append(i)
        elif k in aliases:
            alias_hits.setdefault(aliases[k], []).append(i)
        else:
            unknown.append(i)
    for name, hits in list(direct.items()) + list(alias_hits.items()):
        if len(hits) > 1:
            both = " and ".join(repr(original[i]) for i in hits)
            raise DataError(
                f"{source}: columns {both} both stand for {name!r} (names are compared ignoring case "
                "and surrounding spaces). Keep only one of them."
            )
    for i in unknown:
        m = re.fullmatch(r"(.+)\.(\d+)", keys[i])
        if m and m.group(1) in canon:
            raise DataError(
                f"{source}: column {canon[m.group(1)]!r} appears more than once (the copy was read as "
                f"{original[i]!r}). Keep only one column of that name."
            )

    positions: list[int] = []
    names: list[str] = []
    for name, hits in direct.items():
        i = hits[0]
        if original[i] != name:
            log.add(
                f"column name {original[i]!r} differs from the contract in case or spaces",
                name,
                0,
                f"renamed to {name!r}",
            )
        positions.append(i)
        names.append(name)
    ignored_alias: list[int] = []
    for name, hits in alias_hits.items():
        i = hits[0]
        if name in direct:
            ignored_alias.append(i)
            continue
        log.add(f"column spelled {original[i]!r}, another spelling of {name!r}", name, 0, f"renamed to {name!r}")
        positions.append(i)
        names.append(name)
    leftovers = sorted(unknown + ignored_alias)
    if leftovers:
        listed = ", ".join(repr(original[i]) for i in leftovers[:10])
        more = f" and {len(leftovers) - 10} more" if len(leftovers) > 10 else ""
        log.add(
            f"{len(leftovers)} column(s) not in the data contract: {listed}{more}",
            None,
            0,
            "ignored (left out of the output)",
        )

    missing = [c for c in ACTIONS + (target,) if c not in names]
    if missing:
        raise DataError(_missing_message(source, missing, target, names, [original[i] for i in leftovers]))

    order = np.argsort(positions, kind="stable")
    out = df.iloc[:, [positions[j] for j in order]]
    out = out.set_axis([names[j] for j in order], axis=1)
    return out


def _missing_message(source: str, missing: list[str], target: str, present: list[str], unknown: list[str]) -> str:
    """A DataError message naming each missing column with the nearest unrecognised column (difflib).

    Only columns outside the contract are suggested: a contract column such as
    'cumfollows_treatment_period' is never a misspelling of 'follows_treatment_period'.
    """
    parts = []
    for col in missing:
        near = difflib.get_close_matches(col, unknown, n=1, cutoff=0.6)
        if near:
            hint = f"nearest unrecognised column: {near[0]!r}; rename it to {col!r} if it holds these counts"
        else:
            hint = "no column outside the contract has a similar name"
        parts.append(f"{col!r} ({hint})")
    others = [t for t in TARGETS if t in present and t != target]
    choose = f" Targets this table has: {', '.join(others)}." if target in missing and others else ""
    return (
        f"{source}: missing required column(s): {'; '.join(parts)}. The table needs {REQUIRED_LABEL} "
        f"({target!r}). Rename the columns that hold these counts to these names, or add them.{choose}"
    )


def _to_numbers(ser: pd.Series, col: str, alive: np.ndarray, index: pd.Index, log: RepairLog) -> np.ndarray:
    """A column as float64: booleans to 1/0, text like "1,204" or " 7 " parsed, other text missing."""
    if pd.api.types.is_bool_dtype(ser.dtype):
        log.add("True/False values", col, int(alive.sum()), "converted to 1/0")
        return ser.to_numpy(dtype="float64", na_value=np.nan)
    if isinstance(ser.dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(ser.cat.categories):
        return ser.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(ser.dtype) and not pd.api.types.is_complex_dtype(ser.dtype):
        return ser.to_numpy(dtype="float64", na_value=np.nan)
    raw = ser.astype("string")
    text = raw.str.strip()
    blank = text.isna().to_numpy() | text.str.lower().isin(NA_TOKENS).to_numpy(dtype=bool, na_value=False)
    v = pd.to_numeric(text.where(~blank), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    failed = np.isnan(v) & ~blank
    sep = np.zeros(len(v), dtype=bool)
    if failed.any():
        pos = np.flatnonzero(failed)
        sub = text.iloc[pos]
        hit = sub.str.fullmatch(THOUSANDS_RE).to_numpy(dtype=bool, na_value=False)
        if hit.any():
            sep[pos[hit]] = True
            v[pos[hit]] = pd.to_numeric(sub[hit].str.replace(",", "", regex=False)).to_numpy(dtype="float64")
        if col in SEGMENT_COLUMNS:
            low = sub.str.lower()
            v[pos[low.eq("true").to_numpy(dtype=bool, na_value=False)]] = 1.0
            v[pos[low.eq("false").to_numpy(dtype=bool, na_value=False)]] = 0.0
        failed = np.isnan(v) & ~blank
    spaced = (raw != text).to_numpy(dtype=bool, na_value=False)
    repaired = (sep | spaced) & ~np.isnan(v) & alive
    if repaired.any():
        log.add(
            f"numbers written as text with thousands separators or spaces {_rows_text(index, repaired)}",
            col,
            int(repaired.sum()),
            "parsed as numbers",
        )
    bad = failed & alive
    if bad.any():
        examples = ", ".join(repr(x) for x in pd.unique(text[bad].head(1000))[:3])
        log.add(
            f"non-numeric values (e.g. {examples}) {_rows_text(index, bad)}", col, int(bad.sum()), "treated as missing"
        )
    return v


def _round_counts(v: np.ndarray, col: str, alive: np.ndarray, index: pd.Index, log: RepairLog) -> np.ndarray:
    """Round non-integer counts of the kept rows to the nearest integer (halves up)."""
    with np.errstate(invalid="ignore"):
        frac = alive & np.isfinite(v) & (v != np.floor(v))
    if frac.any():
        examples = ", ".join(f"{x:g}" for x in v[frac][:3])
        log.add(
            f"non-integer counts (e.g. {examples}) {_rows_text(index, frac)}",
            col,
            int(frac.sum()),
            "rounded to the nearest integer",
        )
        v = v.copy()
        v[frac] = np.floor(v[frac] + 0.5)
    return v


def _clean_state(ser: pd.Series, col: str, alive: np.ndarray, index: pd.Index, log: RepairLog) -> np.ndarray:
    """An optional state column as float64 with no gaps: bad values set to 0, counts rounded."""
    v = _to_numbers(ser, col, alive, index, log)
    with np.errstate(invalid="ignore"):
        checks = [
            ("missing value", np.isnan(v), "filled with 0"),
            ("infinite value", np.isinf(v), "set to 0"),
            ("negative count", v < 0, "set to 0"),
            (f"count above {MAX_COUNT:,.0f} (not a real count)", np.isfinite(v) & (v > MAX_COUNT), "set to 0"),
        ]
        if col in SEGMENT_COLUMNS:
            checks.append(("flag value other than 0/1", np.isfinite(v) & (v != 0) & (v != 1), "set to 0"))
    bad_any = np.zeros(len(v), dtype=bool)
    for problem, bad, action in checks:
        hit = bad & alive & ~bad_any
        if hit.any():
            log.add(f"{problem} {_rows_text(index, hit)}", col, int(hit.sum()), action)
        bad_any |= bad
    if bad_any.any():
        v = v.copy()
        v[bad_any] = 0.0
    if col in PRE_PERIOD_COLUMNS:
        v = _round_counts(v, col, alive, index, log)
    return v


def _rows_text(index: pd.Index, mask: np.ndarray) -> str:
    """'in rows 3, 5' or 'in 120 rows, first: 3, 5, 9, 11, 20' (row labels of a mask)."""
    pos = np.flatnonzero(mask)
    labels = ", ".join(str(x) for x in index.take(pos[:MAX_LISTED]))
    if len(pos) <= MAX_LISTED:
        return f"in row{'s' if len(pos) > 1 else ''} {labels}"
    return f"in {len(pos)} rows, first: {labels}"


def _examples(ser: pd.Series) -> str:
    """A few distinct values of a column, for messages."""
    vals = pd.unique(ser.head(1000).astype("string").fillna("<missing>"))[:3]
    return "values such as " + ", ".join(repr(str(x)) for x in vals)


def _drop_summary(log: RepairLog) -> str:
    """A sentence listing why rows were dropped, largest reasons first."""
    drops = sorted((e for e in log.entries if e["action"].startswith(DROPPED)), key=lambda e: -e["rows"])
    if not drops:
        return ""
    reasons = "; ".join(f"{e['rows']} for {e['problem'].split(' in ')[0]} in {e['column']!r}" for e in drops[:5])
    return f"Rows dropped: {reasons}. "

