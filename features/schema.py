"""The transaction contract: canonical field names, types and validation.

Two views of the same contract:

* :class:`Transaction` — one event, used online (Kafka records, API requests).
  :meth:`Transaction.from_mapping` validates a dict and raises :class:`SchemaError`.
* a *canonical frame* — a :class:`pandas.DataFrame` with the canonical columns and
  dtypes, used offline. :func:`normalize_frame` validates a raw frame column by
  column (vectorised) and splits it into accepted rows and :class:`Rejects`.

Rules shared by both views, and so by every entry point (the stream, ``POST /v1/score``
and the file readers): naive timestamps are UTC; numbers given for a time are epoch
seconds; times lie in a plausible window; amounts are finite, non-negative and bounded;
booleans are not numbers, times or ids; ids are non-empty strings; every text field has
a maximum length and holds no control characters; ``is_fraud`` accepts
0/1/true/false/yes/no. The bounds are a :class:`ValidationLimits` (defaults when omitted).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_FIELDS: tuple[str, ...] = ("transaction_id", "timestamp", "card_id", "merchant_id", "amount")
OPTIONAL_FIELDS: tuple[str, ...] = (
    "currency",
    "customer_id",
    "mcc",
    "channel",
    "country",
    "latitude",
    "longitude",
    "device_id",
    "is_fraud",
    "label_timestamp",
)
CANONICAL_FIELDS: tuple[str, ...] = REQUIRED_FIELDS + OPTIONAL_FIELDS

STRING_FIELDS: frozenset[str] = frozenset(
    {"transaction_id", "card_id", "merchant_id", "currency", "customer_id", "mcc", "channel", "country", "device_id"}
)
TIME_FIELDS: frozenset[str] = frozenset({"timestamp", "label_timestamp"})
COORDINATE_RANGES: dict[str, tuple[float, float]] = {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)}

#: Channels the feature families know; any other non-empty value is kept but
#: encodes as an unknown channel (missing feature), never an error.
KNOWN_CHANNELS: tuple[str, ...] = ("card_present", "ecommerce", "atm")

#: Ids are primary keys in PostgreSQL/SQLite and card keys in Redis: bounded so one record
#: cannot break every later store write.
MAX_ID_LENGTH = 128
#: Characters no text field may hold: C0 controls, DEL and C1 controls (PostgreSQL text cannot
#: hold NUL; ESC sequences reach terminals and logs), plus the Unicode line separators and
#: bidirectional overrides that hide text when an id is shown to a person or put in a prompt.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: An unpaired UTF-16 surrogate: valid in a JSON escape ("\\ud800"), yet no UTF-8 encoder (store,
#: producer, state snapshot) can write it, so it would fail a later step instead of here.
SURROGATES = re.compile("[\ud800-\udfff]")

_TRUE = {"1", "true", "yes", "y", "t", "1.0"}
_FALSE = {"0", "false", "no", "n", "f", "0.0"}
_MS_PER_S = 1000


class SchemaError(ValueError):
    """A transaction does not meet the contract. Names the field, the reason and, for files, the row."""

    def __init__(self, field: str, reason: str, *, row: int | None = None, value: Any = None) -> None:
        self.field = field
        self.reason = reason
        self.row = row
        self.value = value
        where = f"row {row}: " if row is not None else ""
        shown = f" (got {value!r})" if value is not None else ""
        super().__init__(f"{where}field '{field}': {reason}{shown}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic on the timedelta: float timestamp() would round microseconds.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _MS_PER_S + delta.microseconds // 1000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / _MS_PER_S, tz=UTC).isoformat().replace("+00:00", "Z")


def _iso_s(ms: int) -> str:
    """A limit as people read it: to the second."""
    return datetime.fromtimestamp(ms // _MS_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DAY_S = 86_400


def _duration(seconds: float) -> str:
    for unit, size in (("day", _DAY_S), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """The bounds of the contract: plausible times, the largest amount, text lengths.

    One instance is handed to :meth:`Transaction.from_mapping` and :func:`normalize_frame`
    by every entry point; the composition root builds it from the feature settings
    (:meth:`from_settings`). The latest allowed time moves with the clock: it is
    ``now + max_future_s`` at the moment a record is validated.

    >>> ValidationLimits(max_amount=5000).max_amount
    5000.0
    """

    #: Times before this are refused (UTC; a naive value is read as UTC).
    earliest_time: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    #: Times later than now + this many seconds are refused (producers' clocks drift; a day is generous).
    max_future_s: float = float(_DAY_S)
    #: The largest amount, in currency units. Above any card payment in a major unit, and it keeps
    #: ``amount * 1e4`` (the window features sum amounts as int64 in 1e-4 units) exact in a float64
    #: and a window's sum far from int64 overflow.
    max_amount: float = 1e9
    #: Ids (transaction, card, merchant, customer, device).
    max_id_length: int = MAX_ID_LENGTH
    #: currency, country, mcc: codes, never free text.
    max_code_length: int = 8
    max_channel_length: int = 32
    _earliest_ms: int = field(init=False, repr=False, compare=False)
    _future_ms: int = field(init=False, repr=False, compare=False)
    #: The latest allowed time when the clock was last read, in a one-item list (the dataclass is frozen).
    _known_latest: list[int] = field(init=False, repr=False, compare=False)
    #: (name, case, maximum length) per optional text field, in :class:`Transaction`'s order.
    _optional_text: tuple[tuple[str, str | None, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        earliest = self.earliest_time if self.earliest_time.tzinfo else self.earliest_time.replace(tzinfo=UTC)
        amount = float(self.max_amount)
        if not (math.isfinite(amount) and amount > 0):
            raise ValueError(f"max_amount must be a positive finite number, got {self.max_amount!r}")
        if not (math.isfinite(self.max_future_s) and self.max_future_s >= 0):
            raise ValueError(f"max_future_s must be a non-negative number of seconds, got {self.max_future_s!r}")
        for name in ("max_id_length", "max_code_length", "max_channel_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        set_ = object.__setattr__  # frozen: derived values are set once, here
        set_(self, "earliest_time", earliest)
        set_(self, "max_amount", amount)
        set_(self, "_earliest_ms", _epoch_ms(earliest))
        set_(self, "_future_ms", int(self.max_future_s * _MS_PER_S))
        set_(self, "_known_latest", [0])
        self.latest_ms()
        ids, codes, channel = self.max_id_length, self.max_code_length, self.max_channel_length
        set_(self, "_optional_text", (
            ("currency", "upper", codes), ("customer_id", None, ids), ("mcc", None, codes),
            ("channel", "lower", channel), ("country", "upper", codes), ("device_id", None, ids),
        ))

    @classmethod
    def from_settings(cls, section: Any) -> ValidationLimits:
        """From a settings section with ``earliest_time``, ``max_future_s`` and ``max_amount`` (FeatureSettings)."""
        return cls(earliest_time=section.earliest_time, max_future_s=section.max_future_s,
                   max_amount=section.max_amount)

    def latest_ms(self) -> int:
        """The latest allowed time now, epoch ms (reads the clock)."""
        latest = int(time.time() * _MS_PER_S) + self._future_ms
        self._known_latest[0] = latest
        return latest

    def within(self, ms: float) -> bool:
        """Whether a time (epoch ms) is in the window. The clock only moves on, so a time at or
        before the bound last read is in the window without reading the clock again; only a later
        one reads it. A clock read per record costs as much as the rest of the time check where
        the clock is a system call (some sandboxes), and a live stream stays a day below the bound."""
        return self._earliest_ms <= ms <= self._known_latest[0] or self._earliest_ms <= ms <= self.latest_ms()

    def time_problem(self, ms: float, *, seconds_given: bool = False, latest: int | None = None) -> str | None:
        """Why a time (epoch ms; a float or int of any size) is out of the window, or None.

        ``latest`` pins the latest allowed time (a frame is judged against one); default: now's.
        """
        latest = self.latest_ms() if latest is None else latest
        if ms >= self._earliest_ms and ms <= latest:
            return None
        if isinstance(ms, float) and not math.isfinite(ms):
            return "not a finite number"
        if ms < self._earliest_ms:
            return f"before the earliest allowed time {_iso_s(self._earliest_ms)}"
        hint = ""
        if seconds_given and ms < 1e30:
            for unit, factor in (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)):
                if self._earliest_ms <= ms / factor <= latest:
                    hint = f"; numbers are epoch seconds and this looks like epoch {unit}"
                    break
        return f"after the latest allowed time {_iso_s(latest)} (now + {_duration(self.max_future_s)}){hint}"

    def amount_problem(self, amount: float) -> str:
        """Why a number is not an allowed amount (called only for one that is not)."""
        if not math.isfinite(amount):
            return "not a finite number"
        if amount < 0:
            return "negative amount (the minimum is 0)"
        limit = self.max_amount
        return f"above the maximum amount {f'{limit:,.0f}' if limit == int(limit) else f'{limit:,}'}"


DEFAULT_LIMITS = ValidationLimits()


@dataclass(slots=True)
class Transaction:
    """One validated card transaction. Times are epoch milliseconds, UTC."""

    transaction_id: str
    timestamp_ms: int
    card_id: str
    merchant_id: str
    amount: float
    currency: str | None = None
    customer_id: str | None = None
    mcc: str | None = None
    channel: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    device_id: str | None = None
    is_fraud: int | None = None
    label_timestamp_ms: int | None = None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / _MS_PER_S, tz=UTC)

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any], limits: ValidationLimits = DEFAULT_LIMITS) -> Transaction:
        """Validate one record with canonical field names against ``limits``.

        >>> Transaction.from_mapping({"transaction_id": "t1", "timestamp": "2026-01-01T10:00:00",
        ...     "card_id": "c1", "merchant_id": "m1", "amount": "12.5"}).amount
        12.5
        """
        if not isinstance(record, Mapping):
            raise SchemaError("<record>", f"expected an object with named fields, got {type(record).__name__}")
        get = record.get
        for name in REQUIRED_FIELDS:
            raw = get(name)
            # _is_missing, inlined for the common well-formed case (this runs for every streamed record)
            if raw is None or (raw.strip() == "" if type(raw) is str else _is_missing(raw)):
                raise SchemaError(name, "missing required field")
        # Plain locals and a positional constructor call instead of a dict passed as **kwargs,
        # and fast paths for string ids and float amounts: the stream runs this for every record.
        transaction_id, card_id, merchant_id = get("transaction_id"), get("card_id"), get("merchant_id")
        if type(transaction_id) is str and type(card_id) is str and type(merchant_id) is str:
            transaction_id, card_id, merchant_id = transaction_id.strip(), card_id.strip(), merchant_id.strip()
        else:
            transaction_id, card_id, merchant_id = (_clean_id(name, get(name)) for name in _ID_FIELDS)
        # Three comparisons for the usual record; only a long id looks for the field to name.
        max_id = limits.max_id_length
        if len(transaction_id) > max_id or len(card_id) > max_id or len(merchant_id) > max_id:
            _raise_too_long(limits.max_id_length, transaction_id=transaction_id, card_id=card_id,
                            merchant_id=merchant_id)
        timestamp_ms = _parse_time_ms("timestamp", record["timestamp"], limits)
        raw = record["amount"]
        # Within [0, max_amount] also means finite and not NaN: _parse_amount's rules, inlined for floats.
        amount = raw if type(raw) is float and 0.0 <= raw <= limits.max_amount else _parse_amount(raw, limits)
        texts: list[str | None] = []
        for name, case, longest in limits._optional_text:
            raw = get(name)
            if raw is None:
                texts.append(None)
                continue
            if type(raw) is str:  # the common case, inlined: the stream decodes every record here
                text = raw.strip()
                text = text.lower() if case == "lower" else text.upper() if case == "upper" else text
            elif _is_missing(raw):
                texts.append(None)
                continue
            else:
                text = _clean_string(name, raw)
            if len(text) > longest:
                _raise_too_long(longest, **{name: text})
            texts.append(text or None)
        currency, customer_id, mcc, channel, country, device_id = texts
        # One C-level scan for the usual record (isprintable is False for every control character);
        # only a hit looks for the field to name, and lets through what is unprintable but allowed
        # (e.g. a no-break space).
        if not "".join((transaction_id, card_id, merchant_id, *filter(None, texts))).isprintable():
            _check_control_characters(
                zip(_TEXT_FIELDS, (transaction_id, card_id, merchant_id, *texts), strict=True)
            )
        coordinates: list[float | None] = []
        for name, low, high in _COORDINATES:
            raw = get(name)
            if type(raw) is float and low <= raw <= high:  # in range also means not NaN
                coordinates.append(raw)
            else:
                coordinates.append(None if _is_missing(raw) else _parse_coordinate(name, raw, low, high))
        raw_label = get("is_fraud")
        raw_label_ts = get("label_timestamp")
        return cls(
            transaction_id, timestamp_ms, card_id, merchant_id, amount, currency, customer_id, mcc, channel, country,
            coordinates[0], coordinates[1], device_id,
            None if raw_label is None or _is_missing(raw_label) else _parse_label(raw_label),
            None if raw_label_ts is None or _is_missing(raw_label_ts)
            else _parse_time_ms("label_timestamp", raw_label_ts, limits),
        )

    def to_record(self) -> dict[str, Any]:
        """The canonical JSON-ready record (ISO-8601 UTC times), inverse of :meth:`from_mapping`."""
        out = asdict(self)
        out["timestamp"] = _iso(out.pop("timestamp_ms"))
        label_ms = out.pop("label_timestamp_ms")
        out["label_timestamp"] = None if label_ms is None else _iso(label_ms)
        return {k: out[k] for k in CANONICAL_FIELDS}


_ID_FIELDS = ("transaction_id", "card_id", "merchant_id")
_COORDINATES: tuple[tuple[str, float, float], ...] = tuple((name, low, high) for name, (low, high) in COORDINATE_RANGES.items())
#: Every text field, ids first, then the optional ones in :class:`Transaction`'s order.
_TEXT_FIELDS = _ID_FIELDS + ("currency", "customer_id", "mcc", "channel", "country", "device_id")


def _raise_too_long(longest: int, **texts: str) -> None:
    for name, text in texts.items():
        if len(text) > longest:
            raise SchemaError(name, f"longer than {longest} characters")


def _check_control_characters(texts: Any) -> None:
    for name, text in texts:
        if text is not None and CONTROL_CHARACTERS.search(text):
            raise SchemaError(name, "contains control characters")
        if text is not None and SURROGATES.search(text):
            raise SchemaError(name, "is not valid Unicode text (an unpaired surrogate)")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _clean_string(field: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SchemaError(field, f"expected a string, got {type(value).__name__}", value=value)
    try:
        text = str(value).strip()
    except ValueError:  # an integer past Python's 4,300-digit str() limit
        raise SchemaError(field, "too long") from None
    if field == "channel":
        return text.lower()
    if field in ("country", "currency"):
        return text.upper()
    return text


def _clean_id(field: str, value: Any) -> str:
    text = _clean_string(field, value)
    if not text:
        raise SchemaError(field, "missing required field")
    return text


def _parse_amount(value: Any, limits: ValidationLimits) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SchemaError("amount", "not a number", value=value)
    try:
        amount = float(value)
    except ValueError:
        raise SchemaError("amount", "not a number", value=value) from None
    except OverflowError:  # an integer beyond float range
        amount = math.inf
    if not (0.0 <= amount <= limits.max_amount):
        raise SchemaError("amount", limits.amount_problem(amount), value=value)
    return amount


def _parse_coordinate(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SchemaError(field, "not a number", value=value)
    try:
        number = float(value)
    except ValueError:
        raise SchemaError(field, "not a number", value=value) from None
    except OverflowError:
        number = math.inf
    if not (low <= number <= high):
        raise SchemaError(field, f"out of range [{low:g}, {high:g}]", value=value)
    return number


def _parse_label(value: Any) -> int:
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise SchemaError("is_fraud", "expected 0/1/true/false", value=value)


def _parse_time_ms(field: str, value: Any, limits: ValidationLimits) -> int:
    if isinstance(value, bool):
        raise SchemaError(field, "unparseable time", value=value)
    if isinstance(value, int | float):
        # Checked in seconds before any conversion: 1e20 s has no datetime, 1e306 s no float in ms.
        ms = value * _MS_PER_S if isinstance(value, int) or -1e300 < value < 1e300 else value
        if not limits.within(ms) and (problem := limits.time_problem(ms, seconds_given=True)) is not None:
            raise SchemaError(field, problem, value=value)
        return int(round(ms))
    if isinstance(value, datetime):
        ms = _epoch_ms(value if value.tzinfo else value.replace(tzinfo=UTC))
    elif not isinstance(value, str):
        raise SchemaError(field, f"expected an ISO-8601 time, got {type(value).__name__}", value=value)
    else:
        ms = _parse_iso_ms(field, value)
    if not limits.within(ms) and (problem := limits.time_problem(ms)) is not None:
        raise SchemaError(field, problem, value=value)
    return ms


def _parse_iso_ms(field: str, value: str) -> int:
    try:
        # The stdlib parser takes the ISO-8601 forms producers send (incl. "Z") ~20x faster
        # than pandas; it is the per-record hot path of the stream's decode step.
        moment = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return _epoch_ms(moment)
    try:
        stamp = pd.Timestamp(value.strip())
    except (ValueError, TypeError, OverflowError):
        raise SchemaError(field, "unparseable time", value=value) from None
    if stamp is pd.NaT:
        raise SchemaError(field, "unparseable time", value=value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


@dataclass
class Rejects:
    """Rows that failed validation: their 1-based record number, the field, the reason and the raw values."""

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def first_error(self) -> SchemaError:
        row = self.frame.iloc[0]
        return SchemaError(str(row["field"]), str(row["reason"]), row=int(row["row"]), value=row["value"])


def _reject_columns() -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series(dtype="int64"), "field": [], "reason": [], "value": [], "record": []})


def normalize_frame(
    raw: pd.DataFrame, *, first_row: int = 1, limits: ValidationLimits = DEFAULT_LIMITS
) -> tuple[pd.DataFrame, Rejects]:
    """Validate a frame whose columns already carry canonical names, against ``limits``.

    Returns the canonical frame (accepted rows, original order, extra columns kept)
    and the rejects. Each rejected row is reported once, for its first failing field
    in canonical order. ``first_row`` is the record number of ``raw``'s first row.
    """
    missing_cols = [name for name in REQUIRED_FIELDS if name not in raw.columns]
    if missing_cols:
        raise SchemaError(
            missing_cols[0],
            f"required column not found; columns present: {', '.join(map(str, raw.columns)) or 'none'}",
        )
    n = len(raw)
    out = pd.DataFrame(index=raw.index)
    reason = np.full(n, None, dtype=object)
    failed_field = np.full(n, None, dtype=object)

    def fail(mask: np.ndarray, field: str, why: str) -> None:
        fresh = mask & (reason == None)  # noqa: E711 - elementwise comparison on an object array
        reason[fresh] = why
        failed_field[fresh] = field

    longest = {name: limits.max_id_length for name in _ID_FIELDS}
    longest.update({name: size for name, _case, size in limits._optional_text})
    for name in CANONICAL_FIELDS:
        column = raw[name] if name in raw.columns else None
        if name in STRING_FIELDS:
            out[name], not_text = _normalize_strings(name, column, n)
            for mask, why in not_text:
                fail(mask, name, why)
            if name in REQUIRED_FIELDS:
                fail(out[name].isna().to_numpy(), name, "missing required field")
            for mask, why in _text_problems(out[name], longest[name]):
                fail(mask, name, why)
        elif name in TIME_FIELDS:
            out[name], missing, problems = _normalize_times(name, column, n, raw.index, limits)
            if name in REQUIRED_FIELDS:
                fail(missing, name, "missing required field")
            for mask, why in problems:
                fail(mask, name, why)
        elif name == "amount":
            out[name], missing, not_number = _normalize_numbers(column, n, raw.index)
            fail(missing, name, "missing required field")
            fail(not_number, name, "not a number")
            values = out[name].to_numpy()
            with np.errstate(invalid="ignore"):
                fail(np.isinf(values), name, limits.amount_problem(math.inf))
                fail(values < 0, name, limits.amount_problem(-1.0))
                fail(values > limits.max_amount, name, limits.amount_problem(limits.max_amount * 2))
        elif name in COORDINATE_RANGES:
            low, high = COORDINATE_RANGES[name]
            out[name], _missing, not_number = _normalize_numbers(column, n, raw.index)
            fail(not_number, name, "not a number")
            values = out[name].to_numpy()
            with np.errstate(invalid="ignore"):
                fail((values < low) | (values > high) | np.isinf(values), name, f"out of range [{low:g}, {high:g}]")
        elif name == "is_fraud":
            out[name], bad = _normalize_labels(column, n, raw.index)
            fail(bad, name, "expected 0/1/true/false")

    duplicate = out["transaction_id"].duplicated(keep="first").to_numpy() & out["transaction_id"].notna().to_numpy()
    fail(duplicate, "transaction_id", "duplicate transaction_id (first occurrence kept)")

    extras = [c for c in raw.columns if c not in CANONICAL_FIELDS]
    for name in extras:
        out[name] = raw[name]

    bad_rows = reason != None  # noqa: E711
    rejects = _reject_columns()
    if bad_rows.any():
        positions = np.flatnonzero(bad_rows)
        records = raw.iloc[positions].astype(object).where(raw.iloc[positions].notna(), None)
        rejects = pd.DataFrame(
            {
                "row": positions + first_row,
                "field": failed_field[positions],
                "reason": reason[positions],
                "value": [records.iloc[i].get(f) for i, f in enumerate(failed_field[positions])],
                "record": records.to_dict(orient="records"),
            }
        )
    return out.loc[~bad_rows].copy(), Rejects(rejects)


#: Values of an object column that are never text, whatever str() would make of them.
_NOT_TEXT = (bool, np.bool_, dict, list, bytes)


def _normalize_strings(name: str, column: pd.Series | None, n: int) -> tuple[pd.Series, list[tuple[np.ndarray, str]]]:
    """The text column and (rows, reason) for values that are no text, worded as the contract words them."""
    if column is None:
        return pd.Series([None] * n, dtype=object), []
    bad: list[tuple[np.ndarray, str]] = []
    if pd.api.types.is_float_dtype(column.dtype):
        # Integer ids read back as floats because of gaps: 123.0 -> "123".
        as_int = column.dropna()
        if (as_int == np.floor(as_int)).all() and not np.isinf(as_int).any():
            text = column.astype("Int64").astype(object).where(column.notna(), None).map(lambda v: None if v is None else str(v))
        else:
            text = column.astype(object).where(column.notna(), None).map(lambda v: None if v is None else repr(v))
    elif pd.api.types.is_bool_dtype(column.dtype):
        bad.append((column.notna().to_numpy(), "expected a string, got bool"))
        text = pd.Series([None] * n, index=column.index, dtype=object)
    else:
        values = column.astype(object).where(column.notna(), None)
        if column.dtype == object:
            # JSON Lines can mix types in a column: true or {...} is no id, as in Transaction.from_mapping.
            kinds = values.map(lambda v: type(v).__name__ if isinstance(v, _NOT_TEXT) else None)
            not_text = kinds.notna().to_numpy()
            if not_text.any():
                for kind in kinds.dropna().unique():
                    shown = "bool" if kind == "bool_" else kind
                    bad.append(((kinds == kind).to_numpy(), f"expected a string, got {shown}"))
                values = values.where(~not_text, None)
        text = values.map(lambda v: None if v is None else str(v).strip())
        text = text.where(text != "", None)
    if name == "channel":
        text = text.map(lambda v: None if v is None else v.lower())
    elif name in ("country", "currency"):
        text = text.map(lambda v: None if v is None else v.upper())
    return text.reset_index(drop=True).set_axis(column.index).astype(object), bad


def _text_problems(text: pd.Series, longest: int) -> list[tuple[np.ndarray, str]]:
    """Rows of a normalised text column that are too long or hold control characters."""
    present = text.dropna()
    if present.empty:
        return []
    problems = []
    lengths = present.str.len()
    if (lengths > longest).any():
        problems.append((text.index.isin(present.index[lengths > longest]), f"longer than {longest} characters"))
    # One C-level scan of the whole column; the regex runs per row only when something is unprintable.
    if not "".join(present).isprintable():
        hit = present.map(lambda v: CONTROL_CHARACTERS.search(v) is not None).to_numpy(dtype=bool)
        if hit.any():
            problems.append((text.index.isin(present.index[hit]), "contains control characters"))
        broken = present.map(lambda v: SURROGATES.search(v) is not None).to_numpy(dtype=bool)
        if broken.any():
            problems.append((text.index.isin(present.index[broken]), "is not valid Unicode text (an unpaired surrogate)"))
    return problems


#: Ticks of a datetime64 unit per millisecond (pandas reads only these units).
_TICKS_PER_MS = {"s": 1e-3, "ms": 1.0, "us": 1e3, "ns": 1e6}


def _normalize_times(
    name: str, column: pd.Series | None, n: int, index: pd.Index, limits: ValidationLimits
) -> tuple[pd.Series, np.ndarray, list[tuple[np.ndarray, str]]]:
    """The UTC time column, its missing rows and (rows, reason) for every problem found.

    Times outside the window of ``limits`` are problems here, before any conversion that
    could overflow (a float 1e20, int64 nanoseconds read as seconds, a year-9999 timestamp).
    """
    if column is None:
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]"), np.ones(n, dtype=bool), []
    earliest, latest = limits._earliest_ms, limits.latest_ms()
    problems: list[tuple[np.ndarray, str]] = []
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        naive = column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column
        stamps = naive.to_numpy()  # datetime64 in the file's own unit (Parquet: often us), not yet ns
        per_ms = _TICKS_PER_MS[np.datetime_data(stamps.dtype)[0]]
        ticks = stamps.view("int64")
        missing = np.isnat(stamps)
        with np.errstate(invalid="ignore"):
            early = ~missing & (ticks < earliest * per_ms)
            late = ~missing & (ticks > latest * per_ms)
        problems += [(early, limits.time_problem(earliest - 1, latest=latest) or ""),
                     (late, limits.time_problem(latest + 1, latest=latest) or "")]
        stamps = stamps.copy()
        stamps[early | late] = np.datetime64("NaT")
        parsed = pd.Series(stamps.astype("datetime64[ns]"), index=index).dt.tz_localize("UTC")
        return parsed, missing, problems
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        seconds = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
        missing = np.isnan(seconds)
        ms = seconds * _MS_PER_S
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~missing & ~((ms >= earliest) & (ms <= latest))
        # Each distinct kind of bad value gets its reason (the hint for ms/us/ns-looking numbers too).
        if bad.any():
            reasons = pd.Series([limits.time_problem(v, seconds_given=True, latest=latest) or "" for v in ms[bad]])
            for why in reasons.unique():
                rows = np.zeros(n, dtype=bool)
                rows[np.flatnonzero(bad)[(reasons == why).to_numpy()]] = True
                problems.append((rows, why))
        ms = np.where(bad, np.nan, ms)
        parsed = pd.to_datetime(np.round(ms), unit="ms", utc=True).astype("datetime64[ns, UTC]")
        return pd.Series(parsed, index=index), missing, problems
    values = column.astype(object).where(column.notna(), None)
    text = values.map(lambda v: None if v is None else str(v).strip())
    missing = (text.isna() | (text == "")).to_numpy()
    parsed = pd.to_datetime(text.where(~missing, None), utc=True, errors="coerce", format="ISO8601")
    unparseable = parsed.isna().to_numpy() & ~missing
    if unparseable.any():
        # Non-ISO forms (e.g. "01/02/2026 10:00") get a second, slower chance.
        retry = pd.to_datetime(text[unparseable], utc=True, errors="coerce", format="mixed")
        parsed = parsed.copy()
        parsed[unparseable] = retry
        unparseable = parsed.isna().to_numpy() & ~missing
    parsed = parsed.astype("datetime64[ns, UTC]")
    ms = timestamps_ms(parsed)
    out_of_window = ~missing & ~unparseable & ~((ms >= earliest) & (ms <= latest))
    # What pandas could not read (a year 9999 is beyond its nanosecond range, a number in an object
    # column) gets the single-record rules, which also name the window a time falls out of.
    retry_rows = np.flatnonzero(unparseable | out_of_window)
    if len(retry_rows):
        parsed = parsed.copy()
        reasons = np.full(n, None, dtype=object)
        raw_values = values.to_numpy()
        for i in retry_rows:
            try:
                good_ms = _parse_time_ms(name, raw_values[i], limits)
            except SchemaError as exc:
                reasons[i] = exc.reason
                parsed.iloc[i] = pd.NaT
            else:
                parsed.iloc[i] = pd.Timestamp(good_ms, unit="ms", tz="UTC")
        for why in pd.unique(reasons[retry_rows]):
            if why is not None:
                problems.append((reasons == why, str(why)))
    return parsed, missing, problems


def _normalize_numbers(column: pd.Series | None, n: int, index: pd.Index) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    if column is None:
        return pd.Series(np.nan, index=index, dtype="float64"), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(column.dtype):
        return pd.Series(np.nan, index=index, dtype="float64"), np.zeros(n, dtype=bool), column.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.astype("float64")
        return values, values.isna().to_numpy(), np.zeros(n, dtype=bool)
    objects = column.astype(object).where(column.notna(), None)
    # A JSON true is no number (str() would not make it one either, but say so plainly).
    not_number = objects.map(lambda v: isinstance(v, _NOT_TEXT)).to_numpy(dtype=bool)
    text = objects.map(lambda v: None if v is None else str(v).strip())
    missing = (text.isna() | (text == "")).to_numpy()
    values = pd.to_numeric(text.where(~missing & ~not_number, None), errors="coerce").astype("float64")
    not_number |= values.isna().to_numpy() & ~missing
    return values, missing, not_number


def _normalize_labels(column: pd.Series | None, n: int, index: pd.Index) -> tuple[pd.Series, np.ndarray]:
    if column is None:
        return pd.Series(np.nan, index=index, dtype="float64"), np.zeros(n, dtype=bool)
    text = column.astype(object).where(column.notna(), None).map(lambda v: None if v is None else str(v).strip().lower())
    missing = (text.isna() | (text == "")).to_numpy()
    values = np.full(n, np.nan)
    is_true = text.isin(_TRUE).to_numpy()
    is_false = text.isin(_FALSE).to_numpy()
    values[is_true] = 1.0
    values[is_false] = 0.0
    bad = ~missing & ~is_true & ~is_false
    return pd.Series(values, index=index, dtype="float64"), bad


def timestamps_ms(column: pd.Series) -> np.ndarray:
    """Epoch milliseconds (int64) of a canonical UTC time column; NaT becomes INT64 min."""
    return column.to_numpy(dtype="datetime64[ms]").astype("int64")


def iter_transactions(frame: pd.DataFrame) -> Any:
    """Yield a :class:`Transaction` per row of a canonical frame, in frame order (no re-validation)."""
    ts = timestamps_ms(frame["timestamp"])
    label_ts = timestamps_ms(frame["label_timestamp"]) if "label_timestamp" in frame else None
    nat = np.iinfo(np.int64).min
    columns = {name: frame[name].to_numpy() if name in frame else None for name in CANONICAL_FIELDS}
    for i in range(len(frame)):

        def opt(name: str, i: int = i) -> Any:
            col = columns[name]
            if col is None:
                return None
            value = col[i]
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

        label = opt("is_fraud")
        yield Transaction(
            transaction_id=columns["transaction_id"][i],  # type: ignore[index]
            timestamp_ms=int(ts[i]),
            card_id=columns["card_id"][i],  # type: ignore[index]
            merchant_id=columns["merchant_id"][i],  # type: ignore[index]
            amount=float(columns["amount"][i]),  # type: ignore[index]
            currency=opt("currency"),
            customer_id=opt("customer_id"),
            mcc=opt("mcc"),
            channel=opt("channel"),
            country=opt("country"),
            latitude=opt("latitude"),
            longitude=opt("longitude"),
            device_id=opt("device_id"),
            is_fraud=None if label is None else int(label),
            label_timestamp_ms=None if label_ts is None or label_ts[i] == nat else int(label_ts[i]),
        )
