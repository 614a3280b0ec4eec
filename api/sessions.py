"""Signed page-session cookies (HMAC-SHA256), so the browser never holds the API key itself.

A token is ``key_id.expiry.signature``; the key is looked up again on every request,
so revoking it ends its sessions too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE_NAME = "fraudlens_session"


class SessionSigner:
    def __init__(self, secret: bytes | None, max_age_s: int) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.max_age_s = max_age_s

    def _sign(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str, *, now: float | None = None) -> str:
        expiry = int((now or time.time()) + self.max_age_s)
        message = f"{key_id}.{expiry}"
        return f"{message}.{self._sign(message)}"

    def verify(self, token: str | None, *, now: float | None = None) -> str | None:
        """The key id of a valid, unexpired token, else None."""
        if not token or token.count(".") != 2:
            return None
        key_id, expiry, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{key_id}.{expiry}")):
            return None
        if not expiry.isdigit() or int(expiry) < (now or time.time()):
            return None
        return key_id

    def csrf_token(self, key_id: str) -> str:
        """The token a page form must echo: a cross-site form cannot know it."""
        return self._sign(f"csrf:{key_id}")[:32]

    def check_csrf(self, key_id: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(key_id), str(token))
