"""Settings of the API and the investigator pages.

The composition root mounts :class:`ApiSettings` as ``settings.api`` (env:
``FRAUDLENS_API__PORT=8080``, ``FRAUDLENS_API__SESSION_SECRET=…``). Nothing in
:mod:`api` reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ApiSettings(BaseModel):
    """Where the API listens, which model it scores with, how page sessions work, what a caller may send."""

    host: str = Field(default="127.0.0.1", description="Interface `fraudlens serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535)
    model_path: Path | None = Field(
        default=None, description="Model bundle directory for POST /v1/score; unset: the registry's champion."
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key the stored page-session ids are hashed with; unset: a random one per process "
                    "(sessions end on restart).",
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60, description="A page session lasts this long.")
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure (sent over HTTPS only); unset: on unless `host` is "
                    "localhost/127.0.0.1, and always on for a request that came over https.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (https://desk.example) besides the request's own Host that may POST, e.g. when a "
                    "proxy rewrites Host.",
    )
    max_batch: int = Field(default=1000, ge=1, description="Most transactions one POST /v1/score may carry.")
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024,
        description="Largest request body any route accepts (413 beyond it, before the body is parsed).",
    )
    max_errors: int = Field(default=20, ge=1, le=1000,
                            description="Errors one 422 lists (the total count is given beside them).")
    auth_fail_burst: int = Field(
        default=50, ge=1, description="Failed authentications one client address, or one key id, may make at once "
                                      "before it is answered 429.")
    auth_fail_per_minute: float = Field(
        default=30.0, gt=0, description="How fast that allowance refills, per address and per key id.")
    metrics_key: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs `Authorization: Bearer <metrics_key>` (or an admin API key); "
                    "unset: /metrics is public (bind the API to a private interface).",
    )
    page_size: int = Field(default=50, ge=1, le=500, description="Alerts per page when the client asks for none.")

    def secure_cookie(self, scheme: str) -> bool:
        """Whether a session cookie set over ``scheme`` gets the Secure flag."""
        if self.cookie_secure is not None:
            return self.cookie_secure or scheme == "https"
        return scheme == "https" or self.host not in LOCAL_HOSTS
