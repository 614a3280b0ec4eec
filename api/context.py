"""What one app instance holds: store, keys, sessions, auth limits, desk, scorer, metrics.

Built by ``create_app``, set up at startup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from api.alerts import AlertDesk
from api.db import setup_tables
from api.keys import KeyStore
from api.metrics import ApiMetrics
from api.ratelimit import AuthLimiter
from api.scoring import ScoreService, resolve_model_path
from api.sessions import SessionStore
from api.settings import ApiSettings
from explain.redaction import redact, secret_values
from streaming.store import SqlAlertStore

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Any
    api: ApiSettings
    store: SqlAlertStore
    limiter: AuthLimiter
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    keys: KeyStore | None = None
    sessions: SessionStore | None = None
    desk: AlertDesk | None = None
    scoring: ScoreService | None = None
    #: Why there is no scorer (shown by /readyz and by POST /v1/score's 503).
    scoring_error: str | None = None

    @classmethod
    def build(cls, settings: Any, api: ApiSettings) -> AppContext:
        return cls(settings=settings, api=api, store=SqlAlertStore(settings.store),
                   limiter=AuthLimiter(api.auth_fail_burst, api.auth_fail_per_minute))

    def setup(self, *, load_model: bool = True) -> None:
        self.store.setup()
        setup_tables(self.store.engine)
        self.keys = KeyStore(self.store.engine)
        secret = self.api.session_secret.get_secret_value().encode() if self.api.session_secret else None
        self.sessions = SessionStore(self.store.engine, secret=secret, max_age_s=self.api.session_max_age_s)
        self.desk = AlertDesk(self.store.engine)
        if load_model:
            self.load_model()

    def load_model(self) -> None:
        from detection.registry import RegistryError
        from streaming.scoring import ModelLoadError

        try:
            path = resolve_model_path(self.api.model_path, self.settings.model.registry_dir)
            self.scoring = ScoreService.load(path, self.settings.state, self.settings.narrative)
            self.scoring_error = None
            log.info("scoring with model %s", self.scoring.model_version)
        except (RegistryError, ModelLoadError, OSError) as exc:
            # Shown by the unauthenticated /readyz and by 503s: a Redis URL in it keeps no password.
            self.scoring, self.scoring_error = None, redact(" ".join(str(exc).split()), secret_values(self.settings))
            log.warning("no model to score with: %s", self.scoring_error)

    def store_reachable(self) -> bool:
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def close(self) -> None:
        self.store.close()
