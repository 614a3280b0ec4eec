"""API keys and roles. A key is shown once at creation; the database keeps only its hash.

>>> keys = KeyStore(engine)
>>> plaintext, principal = keys.create(Role.INVESTIGATOR, name="alice")
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, insert, select, update

from api.db import api_keys_table

KEY_PREFIX = "flk_"


class Role(StrEnum):
    SCORER = "scorer"
    INVESTIGATOR = "investigator"
    VALIDATOR = "validator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's public id (safe to log), its role and display name."""

    key_id: str
    role: Role
    name: str


def hash_secret(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class KeyStore:
    """Keys in the database, with a short in-process cache of verified keys.

    Every API call verifies its key; the cache keeps that off the database on the hot
    path. A revocation here takes effect at once; one made by another process (the
    CLI) within ``cache_ttl_s``.
    """

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 10.0) -> None:
        self.engine = engine
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._cache_lock = threading.Lock()

    def cached(self, plaintext: str) -> tuple[bool, Principal | None]:
        """``(hit, principal)`` from the cache alone (no I/O: safe on the event loop)."""
        entry = self._cache.get(hash_secret(plaintext))
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def create(self, role: Role | str, *, name: str | None = None) -> tuple[str, Principal]:
        """A new key: returns the plaintext (never stored) and its principal."""
        role = Role(role)
        key_id = secrets.token_hex(6)
        plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        principal = Principal(key_id=key_id, role=role, name=(name or f"{role.value}-{key_id}")[:64])
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys_table).values(
                key_id=key_id, secret_hash=hash_secret(plaintext), role=role.value, name=principal.name,
                created_at=datetime.now(UTC),
            ))
        return plaintext, principal

    def verify(self, plaintext: str) -> Principal | None:
        """The principal of a live key, or None (unknown, malformed or revoked)."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
            return None
        digest = hash_secret(plaintext)
        query = select(api_keys_table).where(api_keys_table.c.secret_hash == digest)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        principal = _principal(row)
        with self._cache_lock:
            if len(self._cache) > 10_000:  # bounded: guessed keys must not grow it without limit
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self.cache_ttl_s, principal)
        return principal

    def get(self, key_id: str) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys_table).where(api_keys_table.c.key_id == key_id)).mappings().first()
        return _principal(row)

    def revoke(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(update(api_keys_table).where(api_keys_table.c.key_id == key_id)
                                  .values(revoked_at=datetime.now(UTC)))
        with self._cache_lock:
            self._cache.clear()
        return bool(result.rowcount)


def _principal(row: object) -> Principal | None:
    if row is None or row["revoked_at"] is not None:  # type: ignore[index]
        return None
    return Principal(key_id=row["key_id"], role=Role(row["role"]), name=row["name"])  # type: ignore[index]
