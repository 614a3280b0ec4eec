"""The one check every text input passes at the API boundary: no control characters.

PostgreSQL refuses a NUL in a text value (psycopg raises DataError) and a lone UTF-16
surrogate cannot be encoded at all, so without this a NUL in an alert id, a filter or
a note was a 500 on PostgreSQL and silently stored on SQLite. Path and query
parameters and JSON fields use the ``Annotated`` types; the page forms, parsed by
hand, call :func:`clean_text` directly. Free-text notes may hold line breaks and tabs.

>>> clean_text("merchant-42", field="merchant_id")
'merchant-42'
>>> clean_text("a\\r\\nb", field="note", multiline=True)
'a\\nb'
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 and C1 controls, DEL and lone surrogates (JSON "\ud800" decodes to one).
_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTI_LINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class TextError(ValueError):
    """A text input holds a character the API does not accept; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _reason(char: str, multiline: bool) -> str:
    allowed = "line breaks and tabs are the only control characters allowed" if multiline else \
        "control characters are not allowed"
    return f"contains the control character U+{ord(char):04X}; {allowed}"


def _single_line(value: str) -> str:
    found = _SINGLE_LINE.search(value)
    if found:
        raise ValueError(_reason(found.group(), multiline=False))
    return value


def _multi_line(value: str) -> str:
    value = value.replace("\r\n", "\n")  # browsers send a textarea's line breaks as CRLF
    found = _MULTI_LINE.search(value)
    if found:
        raise ValueError(_reason(found.group(), multiline=True))
    return value


def clean_text(value: str, *, field: str = "value", multiline: bool = False) -> str:
    """``value`` if it holds no control character (``multiline``: except \\n and \\t; \\r\\n becomes \\n)."""
    try:
        return (_multi_line if multiline else _single_line)(value)
    except ValueError as exc:
        raise TextError(field, str(exc)) from None


#: One line of text: ids, filters, names. Use as ``Annotated[CleanText, Query(max_length=128)]``.
CleanText = Annotated[str, AfterValidator(_single_line)]
#: Free text (a decision note): line breaks and tabs allowed, other control characters not.
NoteText = Annotated[str, AfterValidator(_multi_line)]
