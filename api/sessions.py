"""Server-side page sessions, so the browser never holds the API key and a logout ends the session.

The cookie carries a random session id; the ``page_sessions`` table keeps only its
keyed hash (HMAC-SHA256 with ``session_secret``), the key id, the session's CSRF
token and its expiry. Logout revokes the row, so a cookie replayed afterwards is
refused; the key is looked up again on every request, so revoking the key ends its
sessions too. A new login is a new session with a new CSRF token.

>>> sessions = SessionStore(engine, secret=None, max_age_s=3600)
>>> session_id, session = sessions.create("a1b2c3")
>>> sessions.get(session_id).key_id
'a1b2c3'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from api.db import page_sessions_table

COOKIE_NAME = "fraudlens_session"
#: The login form's own CSRF token (double-submit: the form must echo this cookie).
LOGIN_COOKIE_NAME = "fraudlens_login"
_MAX_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class PageSession:
    key_id: str
    csrf: str
    expires_at: datetime


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; False when either is missing."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # SQLite hands back naive UTC


class SessionStore:
    def __init__(self, engine: Engine, *, secret: bytes | None, max_age_s: int) -> None:
        self.engine = engine
        self._secret = secret or secrets.token_bytes(32)
        self.max_age_s = max_age_s

    def _hash(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def create(self, key_id: str) -> tuple[str, PageSession]:
        """A new session for ``key_id``: returns the cookie value (never stored) and the session."""
        now = datetime.now(UTC)
        session_id = secrets.token_urlsafe(32)
        session = PageSession(key_id=key_id, csrf=secrets.token_urlsafe(24),
                              expires_at=now + timedelta(seconds=self.max_age_s))
        with self.engine.begin() as conn:
            # Expired rows are kept a day (for an investigation of a session), then dropped here.
            conn.execute(delete(page_sessions_table).where(page_sessions_table.c.expires_at < now - timedelta(days=1)))
            conn.execute(insert(page_sessions_table).values(
                id_hash=self._hash(session_id), key_id=key_id, csrf=session.csrf, created_at=now,
                expires_at=session.expires_at))
        return session_id, session

    def get(self, session_id: str | None) -> PageSession | None:
        """The live session behind a cookie value, or None (unknown, expired, revoked or malformed)."""
        if not session_id or len(session_id) > _MAX_ID_LENGTH:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(page_sessions_table)
                               .where(page_sessions_table.c.id_hash == self._hash(session_id))).mappings().first()
        if row is None or row["revoked_at"] is not None or _utc(row["expires_at"]) <= datetime.now(UTC):
            return None
        return PageSession(key_id=row["key_id"], csrf=row["csrf"], expires_at=_utc(row["expires_at"]))

    def revoke(self, session_id: str | None) -> bool:
        """End a session (logout); True when a live one was ended."""
        if not session_id or len(session_id) > _MAX_ID_LENGTH:
            return False
        with self.engine.begin() as conn:
            result = conn.execute(update(page_sessions_table)
                                  .where(page_sessions_table.c.id_hash == self._hash(session_id),
                                         page_sessions_table.c.revoked_at.is_(None))
                                  .values(revoked_at=datetime.now(UTC)))
        return bool(result.rowcount)
