"""Read and write transaction files (Parquet, CSV, JSON Lines) through the canonical schema.

A column mapping (YAML: canonical name -> the file's column name) lets any dataset
in. Bad rows either stop the read with a :class:`SchemaError` naming the row, the
field and the reason, or, with ``on_error="skip"``, go to a rejects file (JSON
Lines, one object per rejected row with the reason and the raw record) and are
counted. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from features.schema import (
    CANONICAL_FIELDS,
    DEFAULT_LIMITS,
    REQUIRED_FIELDS,
    Rejects,
    SchemaError,
    ValidationLimits,
    normalize_frame,
)

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class ColumnMappingError(ValueError):
    """The column mapping file is malformed or names columns the data does not have."""


@dataclass(frozen=True)
class ColumnMapping:
    """canonical name -> source column name. Unmapped canonical fields are read under their own name."""

    source_for: Mapping[str, str]

    @classmethod
    def from_yaml(cls, path: Path) -> ColumnMapping:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ColumnMappingError(f"column mapping {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ColumnMappingError(f"column mapping {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ColumnMappingError(f"column mapping {path} must be a mapping 'canonical_name: source_column'")
        unknown = sorted(set(loaded) - set(CANONICAL_FIELDS))
        if unknown:
            raise ColumnMappingError(
                f"column mapping {path}: unknown canonical field(s) {unknown}; valid names: {', '.join(CANONICAL_FIELDS)}"
            )
        for key, value in loaded.items():
            if not isinstance(value, str) or not value:
                raise ColumnMappingError(f"column mapping {path}: '{key}' must map to a column name, got {value!r}")
        return cls(dict(loaded))

    def apply(self, raw: pd.DataFrame, *, source: str = "data") -> pd.DataFrame:
        """Rename source columns to canonical names; fail clearly when a mapped column is absent."""
        absent = {canon: col for canon, col in self.source_for.items() if col not in raw.columns}
        if absent:
            canon, col = next(iter(absent.items()))
            raise ColumnMappingError(
                f"{source}: column '{col}' (mapped to '{canon}') not found; columns present: {', '.join(map(str, raw.columns))}"
            )
        renamed = raw.rename(columns={col: canon for canon, col in self.source_for.items()})
        # A source column already named like a canonical field that is mapped from
        # elsewhere would shadow it; drop the shadow so the mapping wins.
        return renamed.loc[:, ~renamed.columns.duplicated(keep="last")]


@dataclass
class ReadResult:
    """Accepted rows as a canonical frame, plus what was rejected and where it went."""

    frame: pd.DataFrame
    n_read: int
    rejects: Rejects
    rejects_path: Path | None

    @property
    def n_rejected(self) -> int:
        return len(self.rejects)


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise ValueError(f"{path}: unknown file type; use .parquet, .csv or .jsonl")
    return fmt


def read_raw(path: Path) -> pd.DataFrame:
    """Read a file as-is. CSV is read as text so that validation, not the parser, judges each value."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    fmt = detect_format(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    try:
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    except ValueError as exc:
        raise SchemaError("<record>", f"{path} is not valid JSON Lines: {exc}") from None


def read_transactions(
    path: Path,
    *,
    columns: ColumnMapping | None = None,
    on_error: OnError = "raise",
    rejects_path: Path | None = None,
    limits: ValidationLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Read, map and validate a transaction file against the contract's ``limits``.

    ``on_error="raise"`` raises :class:`SchemaError` for the first bad row.
    ``on_error="skip"`` writes every bad row to ``rejects_path`` (default:
    ``<file>.rejects.jsonl`` beside the input) and returns the good ones.
    """
    path = Path(path)
    raw = read_raw(path)
    if columns is not None:
        raw = columns.apply(raw, source=str(path))
    missing = [name for name in REQUIRED_FIELDS if name not in raw.columns]
    if missing:
        hint = "" if columns is not None else " (pass a column mapping with --columns MAP.yaml)"
        raise SchemaError(
            missing[0], f"required column not found in {path}{hint}; columns present: {', '.join(map(str, raw.columns))}"
        )
    raw = raw.reset_index(drop=True)
    frame, rejects = normalize_frame(raw, limits=limits)
    written: Path | None = None
    if len(rejects):
        if on_error == "raise":
            error = rejects.first_error()
            raise SchemaError(
                error.field,
                f"{error.reason} in {path} ({len(rejects)} bad row(s) in all; read with on_error='skip' / --skip-bad-rows to set them aside)",
                row=error.row,
                value=error.value,
            )
        written = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.jsonl")
        write_rejects(rejects, written, source=path)
        log.warning("rejected %d of %d rows from %s; see %s", len(rejects), len(raw), path, written)
    return ReadResult(frame=frame.reset_index(drop=True), n_read=len(raw), rejects=rejects, rejects_path=written)


def write_rejects(rejects: Rejects, path: Path, *, source: Path | str) -> None:
    """Append rejected rows as JSON Lines: source, row, field, reason, value, record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for row in rejects.frame.itertuples(index=False):
            out.write(
                json.dumps(
                    {"source": str(source), "row": int(row.row), "field": row.field, "reason": row.reason,
                     "value": row.value, "record": row.record},
                    default=str,
                )
                + "\n"
            )


def write_transactions(frame: pd.DataFrame, path: Path) -> None:
    """Write a canonical frame; times as ISO-8601 UTC in CSV/JSON Lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = detect_format(path)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return
    text = frame.copy()
    for name in ("timestamp", "label_timestamp"):
        if name in text and pd.api.types.is_datetime64_any_dtype(text[name].dtype):
            text[name] = text[name].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").where(text[name].notna(), None)
    if fmt == "csv":
        text.to_csv(path, index=False)
    else:
        text.to_json(path, orient="records", lines=True, force_ascii=False)


class LabelsError(ValueError):
    """A labels file is malformed or does not match the transactions it should label."""


@dataclass(frozen=True)
class LabelMerge:
    frame: pd.DataFrame
    n_labels: int
    n_matched: int
    n_changed: int


def read_labels_file(path: Path, *, limits: ValidationLimits = DEFAULT_LIMITS) -> pd.DataFrame:
    """A labels file (``transaction_id, is_fraud[, label_timestamp]``; csv/parquet/jsonl), validated
    with the transaction contract (is_fraud, label_timestamp, duplicate ids); :class:`LabelsError`
    names the first bad row."""
    labels = read_raw(Path(path))
    if "transaction_id" not in labels.columns or "is_fraud" not in labels.columns:
        raise LabelsError(f"labels file {path} needs columns transaction_id and is_fraud; has {', '.join(map(str, labels.columns))}")
    labels = labels.assign(transaction_id=labels["transaction_id"].astype(str).str.strip())
    # The required transaction fields are placeholders here, not data (the earliest time passes any window).
    checked, rejects = normalize_frame(
        labels.assign(timestamp=limits.earliest_time.isoformat(), card_id="-", merchant_id="-", amount=0.0),
        limits=limits,
    )
    if len(rejects):
        error = rejects.first_error()
        raise LabelsError(f"labels file {path}, row {error.row}: field '{error.field}': {error.reason}")
    return checked


def apply_labels(frame: pd.DataFrame, path: Path, *, limits: ValidationLimits = DEFAULT_LIMITS) -> LabelMerge:
    """Overlay a labels file (``transaction_id, is_fraud[, label_timestamp]``) on a canonical frame.

    This is how investigator decisions (``fraudlens labels export``) reach training:
    a decision replaces the row's ``is_fraud`` and, when given, its ``label_timestamp``
    (the moment the label became known, so label-aware features respect it). Every
    label must name a transaction in the frame; an unknown id is an error naming it,
    never a label silently ignored.
    """
    checked = read_labels_file(path, limits=limits)
    known = pd.Index(frame["transaction_id"])
    unknown = ~checked["transaction_id"].isin(known)
    if unknown.any():
        first = checked.loc[unknown, "transaction_id"].iloc[0]
        raise LabelsError(f"labels file {path}: {int(unknown.sum())} label(s) for transactions not in the data, e.g. {first!r}")
    out = frame.copy()
    position = pd.Series(range(len(out)), index=out["transaction_id"])
    rows = position.loc[checked["transaction_id"]].to_numpy()
    new_labels = checked["is_fraud"].to_numpy()
    changed = int((out["is_fraud"].to_numpy()[rows] != new_labels).sum())
    out.iloc[rows, out.columns.get_loc("is_fraud")] = new_labels
    if "label_timestamp" in checked.columns:
        stamps = checked["label_timestamp"].to_numpy()
        has = ~pd.isna(stamps)
        out.iloc[rows[has], out.columns.get_loc("label_timestamp")] = stamps[has]
    return LabelMerge(frame=out, n_labels=len(checked), n_matched=len(rows), n_changed=changed)
