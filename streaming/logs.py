"""Structured JSON logs for the streaming service.

Log lines carry counts, partitions, offsets and model versions: never card ids,
amounts or raw payloads, which are PII or may contain it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from explain.redaction import RedactingFilter

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        # exc_text first: explain.redaction.RedactingFilter leaves the traceback there with secrets masked.
        if record.exc_text:
            payload["error"] = record.exc_text
        elif record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Route the root logger through :class:`JsonFormatter` (the `stream` command calls this).

    The new handler masks URL credentials, and keeps the secrets the replaced handlers masked.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    kept = [f for old in root.handlers for f in old.filters if isinstance(f, RedactingFilter)]
    handler.addFilter(kept[0] if kept else RedactingFilter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every reconnect attempt at WARNING; our retry logs say it once.
    logging.getLogger("kafka").setLevel(logging.ERROR)
