"""Fixtures shared by every test package.

Real servers (Redis, PostgreSQL, the Kafka-compatible broker) are used as they are.
On a developer laptop without one, tests that need it skip with the reason; with
``CI`` set, a missing server is a failure, never a silent skip.

Every process a test starts is stopped by the test's own fixture or ``finally`` block;
tests/process_guard.py (a plugin, loaded below) fails the session that leaves one running.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from fraudlens.settings import Settings

# The session-finish guard: kills what the session left running and fails the run naming it.
pytest_plugins = ["process_guard"]

REDIS_URL = os.environ.get("FRAUDLENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("FRAUDLENS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1.0):
            return True
    except OSError:
        return False


def require_server(name: str, url: str, default_port: int) -> None:
    """Skip (laptop) or fail (CI) when a real server the test needs is not reachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
def redis_url() -> str:
    require_server("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
def postgres_url() -> str:
    require_server("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL schema of this test's own: other tests share the database, and append-only
    tables (the audit log) cannot be cleaned row by row."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for one test: defaults, with every file under the test's own directory."""
    return Settings(work_dir=tmp_path, model={"registry_dir": tmp_path / "models"})


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return Settings(work_dir=tmp_path, **overrides)

    return build
