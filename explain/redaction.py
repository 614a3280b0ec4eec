"""Secrets never leave the process: one redaction helper for every rendered connection string.

A URL's password (``redis://:pw@host``, ``postgresql+psycopg://user:pw@host/db``), a
secret query parameter (``?password=``, ``&token=``), a ``password=...`` keyword of a
libpq DSN and every configured secret value (an API key, a signing key) become ``***``
wherever text is shown: readiness responses, log lines and their tracebacks, CLI errors,
``fraudlens config``.

Why here: api, streaming, explain and the composition root (``fraudlens``) all render such
values, and imports flow api -> streaming -> explain -> detection -> features. ``explain`` is
the lowest package that renders secrets itself (its OpenAI key and base URL), so everything
above can import it without an upward import; ``detection`` and ``features`` only *hold*
URLs, and the messages they raise are redacted where they are shown.

>>> redact("cannot reach Redis at redis://:s3cret@10.0.0.5:6379/0")
'cannot reach Redis at redis://:***@10.0.0.5:6379/0'
>>> redact("postgresql+psycopg://app:pw@db/x?sslmode=require&password=pw2")
'postgresql+psycopg://app:***@db/x?sslmode=require&password=***'
>>> redact("the key is abc123", secrets={"abc123"})
'the key is ***'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"

#: Query or DSN keywords whose value is a credential.
_SECRET_KEYS = r"(?:password|passwd|pwd|pass|token|access_token|api_key|apikey|secret|client_secret|sasl_password)"
# scheme://[user]:password@  (the password may hold anything but '@', '/' and whitespace;
# an unescaped '@' in a password is not a valid URL and is not looked for)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<pw>[^\s@/]+)(?=@)")
_QUERY = re.compile(rf"(?P<head>[?&;]{_SECRET_KEYS}=)(?P<value>[^&#\s'\"]+)", re.IGNORECASE)
# libpq keyword form: "host=db password=pw dbname=x"
_KEYWORD = re.compile(rf"(?P<head>(?<![\w?&;]){_SECRET_KEYS}\s*=\s*)(?P<value>'[^']*'|[^\s'\",;&]+)", re.IGNORECASE)
#: Secrets shorter than this are not searched for in free text: they would mask ordinary words.
_MIN_SECRET_LEN = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords, secret query/DSN parameters and every value in ``secrets`` masked."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: m.group("head") + MASK, text)
    out = _QUERY.sub(lambda m: m.group("head") + MASK, out)
    out = _KEYWORD.sub(lambda m: m.group("head") + MASK, out)
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        out = out.replace(secret, MASK)
    return out


def redact_url(url: str) -> str:
    """A connection string safe to show: ``redis://:pw@host:6379/0`` -> ``redis://:***@host:6379/0``."""
    return redact(url)


def url_secrets(value: str) -> set[str]:
    """The credentials inside one connection string (password and secret query values, raw and decoded)."""
    found: set[str] = set()
    if "://" not in value:
        return found
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:  # not a URL after all (e.g. a bad port): nothing to extract
        return found
    if password:
        found.update({password, unquote(password)})
    for key, item in parse_qsl(parts.query, keep_blank_values=False):
        if re.fullmatch(_SECRET_KEYS, key, re.IGNORECASE):
            found.update({item, unquote(item)})
    return found


def secret_values(model: object) -> set[str]:
    """Every secret a settings tree holds: ``SecretStr`` values and the credentials in its URL strings."""
    found: set[str] = set()
    if not isinstance(model, BaseModel):
        return found
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, BaseModel):
            found |= secret_values(value)
        elif isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, str):
            found |= url_secrets(value)
    return {s for s in found if s}


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, ``extra`` fields, traceback and stack text.

    Attach it to handlers (:func:`install_log_redaction` does it for every configured one), so
    records of every logger pass through it, including those propagated from libraries.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets.update(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: let the handler report it as logging does
            return True
        # A record is changed only where it held a secret: other handlers (a test's log capture)
        # keep its arguments and exception object otherwise.
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info or record.exc_text:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
            clean = redact(text, self.secrets)
            if clean != text:
                # The masked text is the traceback from now on; no formatter may render the original.
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                record.__dict__[key] = redact(value, self.secrets)
        record._redacted = True
        return True


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def install_log_redaction(secrets: Iterable[str] = (), loggers: Iterable[str] = ()) -> RedactingFilter:
    """Put one :class:`RedactingFilter` on every handler of the root logger and of ``loggers``.

    Idempotent: a handler that already has the filter gets the new ``secrets`` added to it.
    Call it again after anything replaces handlers (uvicorn's log config, JSON logs).
    """
    shared: RedactingFilter | None = None
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for name in loggers:
        handlers.extend(logging.getLogger(name).handlers)
    for handler in handlers:
        for existing in handler.filters:
            if isinstance(existing, RedactingFilter):
                shared = shared or existing
    if shared is None:
        shared = RedactingFilter()
    shared.add(secrets)
    for handler in handlers:
        for existing in list(handler.filters):
            if isinstance(existing, RedactingFilter) and existing is not shared:
                shared.add(existing.secrets)
                handler.removeFilter(existing)
        if shared not in handler.filters:
            handler.addFilter(shared)
    return shared
