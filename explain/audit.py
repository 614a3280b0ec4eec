"""Append-only audit trail of every narrative generation (JSON Lines).

One line per attempt: what the model was asked (the exact messages and their hash),
what it said (raw), which backend/model/parameters, what the checks found and how
long it took — enough for a validator to replay the generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    """Thread-safe appender; each record is one line, flushed before :meth:`append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({"logged_at": datetime.now(UTC).isoformat(), **record}, ensure_ascii=False, default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # "a" mode: the OS appends each write at the end, even with several writers.
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()

    def read(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first (for validators and tests)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
