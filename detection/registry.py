"""A directory of model bundles with a champion pointer and the history of its changes.

::

    registry_dir/
        fl-3f9a0c1d2e4b/     a bundle (see detection.bundle)
        fl-77e0b5a91c02/
        CHAMPION             the version scoring uses, one line
        HISTORY.jsonl        every champion change, append-only, one JSON object a line
        validation/<VERSION>/report.json   validation reports (``fraudlens validate``)

``CHAMPION`` is replaced atomically (write a temporary file, fsync, rename), so a
reader sees the old or the new version, never half a file.

``HISTORY.jsonl`` records each change as ``{"at", "action": "promote"|"rollback",
"version", "previous", "actor", "reasons"}``; lines are only ever appended. Changes
hold an exclusive lock on the history file, so two promotions at once cannot
interleave their pointer and history writes.

Rollback semantics (what a bank expects from "roll back"): return to the champion
*before the current one*. The history is replayed as a stack: a promotion pushes
the champion it replaced, a rollback pops. So after promoting A, B, C, ``rollback()``
gives B, a second ``rollback()`` gives A, a third fails (nothing earlier). A rollback
is never undone by another rollback (that would flip-flop between two models); to
go forward again, promote the version explicitly (through the promotion gate,
:mod:`detection.promotion`). A rollback skips the gate: it returns to a model that
was already in production.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TextIO

from detection.bundle import MANIFEST_FILE, BundleError, ModelBundle

CHAMPION_FILE = "CHAMPION"
HISTORY_FILE = "HISTORY.jsonl"
VALIDATION_DIR = "validation"
REPORT_FILE = "report.json"
#: Why a champion changed when the caller did not say (register(..., promote=True), the demo).
DIRECT_PROMOTION = "promoted directly (ModelRegistry.promote), without the promotion gate"

Action = Literal["promote", "rollback"]


class _Unchecked(Enum):
    UNCHECKED = 0


_UNCHECKED = _Unchecked.UNCHECKED


class RegistryError(ValueError):
    """The registry has no such version, no champion yet, or nothing to roll back to."""


@dataclass(frozen=True)
class HistoryEntry:
    """One champion change, as one line of ``HISTORY.jsonl``."""

    at: str
    action: Action
    version: str
    previous: str | None
    actor: str
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ModelRegistry:
    """Bundles under ``root``; ``champion()`` is the one in production.

    >>> reg = ModelRegistry(Path("runs/models"))  # no I/O until a method is called
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list_versions(self) -> list[str]:
        """Registered versions, oldest first (by manifest time, then name)."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()]
        return [p.name for p in sorted(found, key=lambda p: ((p / MANIFEST_FILE).stat().st_mtime, p.name))]

    def register(self, bundle: ModelBundle, *, promote: bool = False) -> Path:
        """Save ``bundle`` into the registry (a no-op copy if that version is already there)."""
        path = bundle.save(self.root)
        if promote:
            self.promote(bundle.version)
        return path

    def validation_report_path(self, version: str) -> Path:
        """Where ``fraudlens validate`` leaves the report the promotion gate reads."""
        return self.root / VALIDATION_DIR / version / REPORT_FILE

    def promote(self, version: str, *, actor: str = "unknown", reasons: Sequence[str] | None = None,
                expect_champion: str | None | _Unchecked = _UNCHECKED) -> HistoryEntry | None:
        """Make ``version`` the champion and record it in the history.

        This is the unconditional pointer change; a bank promotes through
        :func:`detection.promotion.promote_if_approved`, which runs the gate first and
        passes ``expect_champion`` (the champion it compared against) so that a
        champion changed meanwhile by someone else is not silently replaced.
        Promoting the current champion again changes nothing and records nothing
        (returns ``None``).
        """
        self._require(version, "promote")
        with self._locked_history() as history_file:
            previous = self._current_champion()
            if expect_champion is not _UNCHECKED and previous != expect_champion:
                raise RegistryError(f"cannot promote {version}: the champion changed to {previous} while the "
                                    f"gate compared against {expect_champion}; run the promotion again")
            if previous == version:
                return None
            entry = self._entry("promote", version, previous, actor, list(reasons) if reasons else [DIRECT_PROMOTION])
            self._change(history_file, entry)
            return entry

    def rollback(self, *, actor: str = "unknown", reasons: Sequence[str] | None = None) -> HistoryEntry:
        """Restore the champion before the current one (see the module docstring) and record it."""
        if self._current_champion() is None:  # checked again under the lock; this one creates no files
            raise RegistryError(f"cannot roll back: registry {self.root} has no champion")
        with self._locked_history() as history_file:
            current = self._current_champion()
            target = _rollback_target(self.history(), current, self.root)
            self._require(target, "roll back to")
            why = list(reasons) if reasons else [f"rolled back from {current} to the previous champion {target}"]
            entry = self._entry("rollback", target, current, actor, why)
            self._change(history_file, entry)
            return entry

    def history(self) -> list[HistoryEntry]:
        """Every recorded champion change, oldest first."""
        path = self.root / HISTORY_FILE
        if not path.is_file():
            return []
        entries = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(HistoryEntry(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise RegistryError(f"{path} line {number} is not a history entry ({exc}); the file is "
                                    "append-only: restore it from backup rather than editing it") from None
        return entries

    def champion_version(self) -> str:
        version = self._current_champion()
        if version is None:
            raise RegistryError(f"registry {self.root} has no champion yet; train a model and promote it "
                                "(fraudlens promote VERSION, or ModelRegistry.register(bundle, promote=True))")
        return version

    def champion(self, **load_options: object) -> ModelBundle:
        """Load the champion bundle (``load_options`` go to :meth:`ModelBundle.from_path`)."""
        version = self.champion_version()
        try:
            return ModelBundle.from_path(self.root / version, **load_options)  # type: ignore[arg-type]
        except BundleError as exc:
            raise RegistryError(f"the champion {version} of registry {self.root} cannot be loaded: {exc}") from None

    def load(self, version: str, **load_options: object) -> ModelBundle:
        if version not in self.list_versions():
            raise RegistryError(f"version {version} is not in registry {self.root}")
        return ModelBundle.from_path(self.root / version, **load_options)  # type: ignore[arg-type]

    # -- internals ---------------------------------------------------------------------------------------------

    def _require(self, version: str, verb: str) -> None:
        if version not in self.list_versions():
            raise RegistryError(f"cannot {verb} {version}: not in registry {self.root}; "
                                f"registered: {', '.join(self.list_versions()) or 'none'}")

    def _current_champion(self) -> str | None:
        pointer = self.root / CHAMPION_FILE
        if not pointer.is_file():
            return None
        return pointer.read_text().strip() or None

    @staticmethod
    def _entry(action: Action, version: str, previous: str | None, actor: str, reasons: list[str]) -> HistoryEntry:
        at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return HistoryEntry(at=at, action=action, version=version, previous=previous, actor=actor, reasons=reasons)

    @contextmanager
    def _locked_history(self) -> Iterator[TextIO]:
        """The history file open for appending, under an exclusive lock for the whole change."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / HISTORY_FILE, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _change(self, handle: TextIO, entry: HistoryEntry) -> None:
        """Point CHAMPION at ``entry.version``, then append ``entry``; undo the pointer if the append fails."""
        self._write_pointer(entry.version)
        try:
            handle.write(json.dumps(entry.to_json(), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            # An unrecorded champion change is what an audit must never find: put the old one back.
            if entry.previous is not None:
                self._write_pointer(entry.previous)
            else:
                (self.root / CHAMPION_FILE).unlink(missing_ok=True)
            raise

    def _write_pointer(self, version: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".CHAMPION.", dir=self.root)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / CHAMPION_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _rollback_target(history: list[HistoryEntry], current: str | None, root: Path) -> str:
    """The champion before the current one: replay the history as a stack (promote pushes, rollback pops)."""
    if current is None:
        raise RegistryError(f"cannot roll back: registry {root} has no champion")
    if not history:
        raise RegistryError(f"cannot roll back: no champion change is recorded in {root / HISTORY_FILE}, so there "
                            "is no earlier champion to return to")
    stack: list[str] = []
    for entry in history:
        if entry.action == "promote":
            if entry.previous is not None:
                stack.append(entry.previous)
        elif stack:
            stack.pop()
    if history[-1].version != current:
        raise RegistryError(f"cannot roll back: the champion is {current} but {root / HISTORY_FILE} last records "
                            f"{history[-1].version} (the CHAMPION file was changed outside the registry); promote the version "
                            "you want explicitly with 'fraudlens promote VERSION'")
    if not stack:
        raise RegistryError(f"cannot roll back: {current} is the first champion recorded in {root / HISTORY_FILE}; "
                            "there is no earlier champion to return to")
    return stack[-1]
