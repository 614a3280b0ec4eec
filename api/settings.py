"""Settings of the API and the investigator pages.

The composition root mounts :class:`ApiSettings` as ``settings.api`` (env:
``FRAUDLENS_API__PORT=8080``, ``FRAUDLENS_API__SESSION_SECRET=…``). Nothing in
:mod:`api` reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class ApiSettings(BaseModel):
    """Where the API listens, which model it scores with, how page sessions are signed."""

    host: str = Field(default="127.0.0.1", description="Interface `fraudlens serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535)
    model_path: Path | None = Field(
        default=None, description="Model bundle directory for POST /v1/score; unset: the registry's champion."
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs page session cookies; unset: a random one per process (sessions end on restart).",
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60, description="A page session lasts this long.")
    secure_cookies: bool = Field(default=False, description="Mark the session cookie Secure (behind HTTPS).")
    max_batch: int = Field(default=1000, ge=1, description="Most transactions one POST /v1/score may carry.")
    page_size: int = Field(default=50, ge=1, le=500, description="Alerts per page when the client asks for none.")
