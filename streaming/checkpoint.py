"""Feature-state checkpoints: a state snapshot and the offsets it covers, written atomically.

A checkpoint says: the state holds exactly the records *below* these offsets, per
(topic, partition). It is taken on the poll thread between batches, when the state is
"every polled batch applied", so its offsets are usually ahead of the committed ones
(batches still with the writer). It becomes usable once the group's committed offsets
reach its offsets: a restart restores the newest such checkpoint and replays the gap up
to the committed offsets through the features (see :mod:`streaming.state_sync`).

One file per checkpoint, ``ckpt-<sequence>.flc``: ``FLC1``, a 4-byte big-endian header
length, the JSON header (offsets, sequence, creation time), then the state snapshot
(:func:`features.state.encode_snapshot`). Written to a temporary file, fsynced, renamed
and the directory fsynced, so a crash leaves either the old set of files or the new one.

>>> import tempfile
>>> directory = CheckpointDir(Path(tempfile.mkdtemp()))
>>> _ = directory.write({("tx", 0): 10}, b"FLS1...")
>>> directory.usable({("tx", 0): 9}) is None, directory.usable({("tx", 0): 12}).offsets
(True, {('tx', 0): 10})
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"FLC1"
_HEADER_LENGTH = struct.Struct(">I")
_SUFFIX = ".flc"

Offsets = dict[tuple[str, int], int]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint file: the offsets its state covers (the state is read on demand)."""

    path: Path
    sequence: int
    offsets: Offsets
    created_ms: int

    def covered_by(self, committed: Mapping[tuple[str, int], int]) -> bool:
        """True when every partition's committed offset has reached this checkpoint's offset."""
        return all(offset <= committed.get(tp, -1) for tp, offset in self.offsets.items())

    def state(self) -> bytes:
        """The state snapshot this checkpoint holds."""
        data = self.path.read_bytes()
        (length,) = _HEADER_LENGTH.unpack_from(data, len(_MAGIC))
        return data[len(_MAGIC) + _HEADER_LENGTH.size + length :]


def _read_header(path: Path) -> Checkpoint:
    with path.open("rb") as file:
        head = file.read(len(_MAGIC) + _HEADER_LENGTH.size)
        if len(head) < len(_MAGIC) + _HEADER_LENGTH.size or not head.startswith(_MAGIC):
            raise CheckpointError(f"{path} is not a fraudlens state checkpoint (missing FLC1 header)")
        (length,) = _HEADER_LENGTH.unpack_from(head, len(_MAGIC))
        raw = file.read(length)
    try:
        header = json.loads(raw)
        offsets = {(str(topic), int(partition)): int(offset) for topic, partition, offset in header["offsets"]}
        return Checkpoint(path, int(header["sequence"]), offsets, int(header["created_ms"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint header is corrupt: {exc}") from None


class CheckpointDir:
    """The checkpoints of one consumer (a directory of its own); the constructor does no I/O."""

    def __init__(self, path: Path, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.path = Path(path)
        self.keep = keep

    def list(self) -> list[Checkpoint]:
        """Readable checkpoints, oldest first (an unreadable file is skipped: it cannot be restored)."""
        if not self.path.is_dir():
            return []
        out = []
        for path in self.path.glob(f"ckpt-*{_SUFFIX}"):
            with contextlib.suppress(CheckpointError, OSError):
                out.append(_read_header(path))
        return sorted(out, key=lambda c: c.sequence)

    def write(self, offsets: Mapping[tuple[str, int], int], state: bytes) -> Checkpoint:
        """Write a checkpoint atomically; returns it."""
        self.path.mkdir(parents=True, exist_ok=True)
        existing = self.list()
        sequence = existing[-1].sequence + 1 if existing else 1
        created_ms = time.time_ns() // 1_000_000
        header = json.dumps({
            "sequence": sequence, "created_ms": created_ms,
            "offsets": [[topic, partition, offset] for (topic, partition), offset in sorted(offsets.items())],
        }).encode()
        final = self.path / f"ckpt-{sequence:012d}{_SUFFIX}"
        temporary = self.path / f".{final.name}.tmp"
        with temporary.open("wb") as file:
            file.write(_MAGIC + _HEADER_LENGTH.pack(len(header)) + header)
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.path)
        return Checkpoint(final, sequence, dict(offsets), created_ms)

    def usable(self, committed: Mapping[tuple[str, int], int]) -> Checkpoint | None:
        """The newest checkpoint whose offsets the committed offsets have reached, if any."""
        covered = [c for c in self.list() if c.covered_by(committed)]
        return covered[-1] if covered else None

    def prune(self, committed: Mapping[tuple[str, int], int]) -> int:
        """Delete checkpoints older than the newest covered one, and the oldest of those newer than it
        beyond ``keep``. Returns how many were deleted."""
        checkpoints = self.list()
        covered = [i for i, c in enumerate(checkpoints) if c.covered_by(committed)]
        base = covered[-1] if covered else -1
        doomed = checkpoints[: max(base, 0)]
        newer = checkpoints[base + 1 :]
        if len(newer) > self.keep:
            doomed += newer[: len(newer) - self.keep]
        for checkpoint in doomed:
            with contextlib.suppress(FileNotFoundError):
                checkpoint.path.unlink()
        return len(doomed)


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory entry is (POSIX); some filesystems refuse, harmlessly.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
