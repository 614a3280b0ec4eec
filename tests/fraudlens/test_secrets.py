"""No URL credential, key, password or token appears in a response, a log line or an error text.

A password is planted in every configured secret (the Redis URL, the store URL, the OpenAI
key, the page-session key), each dependency is made to fail for real (a closed port, no mock),
and everything the processes say is searched for it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cli_processes import cli_env, run_cli, start_cli, stop, train_tiny_bundle, wait_for

from explain.redaction import RedactingFilter, install_log_redaction, redact, secret_values
from fraudlens.settings import Settings
from streaming.broker import free_port

PASSWORDS = {"redis": "RedisPw-7781", "store": "StorePw-5521", "openai": "OpenaiKey-9043", "session": "SessionKey-3317"}


def leaked(text: str) -> list[str]:
    return [name for name, password in PASSWORDS.items() if password in text]


def planted_env(tmp_path: Path, store_url: str, **more: str) -> dict[str, str]:
    planted = {
        "FRAUDLENS_STATE__BACKEND": "redis",
        # A closed port: Redis fails for real.
        "FRAUDLENS_STATE__REDIS_URL": f"redis://:{PASSWORDS['redis']}@127.0.0.1:{free_port()}/0",
        "FRAUDLENS_STORE__URL": store_url,
        "FRAUDLENS_NARRATIVE__OPENAI_API_KEY": PASSWORDS["openai"],
        "FRAUDLENS_API__SESSION_SECRET": PASSWORDS["session"],
    }
    return cli_env(tmp_path, **(planted | more))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_bundle(tmp_path_factory.mktemp("secrets-model"))


def test_redact_masks_every_kind_of_credential() -> None:
    cases = {
        "redis://:pw-1@cache:6379/0": "redis://:***@cache:6379/0",
        "rediss://app:pw-1@cache:6380": "rediss://app:***@cache:6380",
        "postgresql+psycopg://fraud:pw-1@db:5432/fl": "postgresql+psycopg://fraud:***@db:5432/fl",
        "https://llm/v1?api_key=pw-1&model=x": "https://llm/v1?api_key=***&model=x",
        "redis://cache:6379/0?password=pw-1": "redis://cache:6379/0?password=***",
        "host=db port=5432 password=pw-1 dbname=fl": "host=db port=5432 password=*** dbname=fl",
        "http://127.0.0.1:8000/v1": "http://127.0.0.1:8000/v1",  # no credential: unchanged
    }
    for raw, shown in cases.items():
        assert redact(raw) == shown
    assert redact("sent header Bearer sk-live-123456", {"sk-live-123456"}) == "sent header Bearer ***"


def test_secret_values_of_the_settings() -> None:
    settings = Settings(state={"redis_url": "redis://:p%40ss@cache/0"}, narrative={"openai_api_key": "sk-abcdef"},
                        store={"url": "postgresql+psycopg://u:db-pw-1@db/x"})
    assert {"p%40ss", "p@ss", "sk-abcdef", "db-pw-1"} <= secret_values(settings)


def test_log_records_are_scrubbed_message_extra_and_traceback(tmp_path: Path) -> None:
    log_file = tmp_path / "log.txt"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(message)s %(url)s"))
    logger = logging.getLogger("test_secrets.scrub")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        handler.addFilter(RedactingFilter({"sk-abcdef"}))
        try:
            raise ConnectionError("cannot reach redis://:RedisPw-7781@cache:6379/0 with key sk-abcdef")
        except ConnectionError:
            logger.exception("failed on %s", "postgresql://u:StorePw-5521@db/x",
                             extra={"url": "redis://:RedisPw-7781@h/0"})
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert "ConnectionError" in text and "postgresql://u:***@db/x" in text
    assert "RedisPw-7781" not in text and "StorePw-5521" not in text and "sk-abcdef" not in text


def test_install_log_redaction_covers_every_handler_and_keeps_its_secrets() -> None:
    logger = logging.getLogger("test_secrets.install")
    first, second = logging.StreamHandler(), logging.StreamHandler()
    logger.addHandler(first)
    try:
        shared = install_log_redaction({"key-one"}, loggers=["test_secrets.install"])
        logger.addHandler(second)
        again = install_log_redaction({"key-two"}, loggers=["test_secrets.install"])
        assert again is shared and {"key-one", "key-two"} <= shared.secrets
        assert shared in first.filters and shared in second.filters
    finally:
        for handler in (first, second):
            logger.removeHandler(handler)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(shared)


def test_config_output_masks_every_secret(tmp_path: Path) -> None:
    env = planted_env(tmp_path, f"postgresql+psycopg://fraud:{PASSWORDS['store']}@db:5432/fl")
    done = run_cli(env, "config")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FRAUDLENS_STATE__REDIS_URL" in done.stderr and "fraud:***@db" in done.stderr.replace("\n", "")
    assert leaked(done.stdout + done.stderr) == []


@pytest.mark.slow
@pytest.mark.integration
def test_stream_with_failing_redis_says_so_without_the_password(tmp_path: Path, bundle: Path) -> None:
    env = planted_env(tmp_path, f"postgresql+psycopg://fraud:{PASSWORDS['store']}@127.0.0.1:{free_port()}/fl")
    done = run_cli(env, "stream", "--model", str(bundle), "--bootstrap", f"127.0.0.1:{free_port()}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.startswith("error: cannot reach Redis at redis://:***@127.0.0.1")
    assert leaked(done.stdout + done.stderr) == []


@pytest.mark.slow
@pytest.mark.integration
def test_stream_logs_of_a_failing_store_and_broker_hold_no_password(tmp_path: Path, bundle: Path) -> None:
    env = planted_env(tmp_path, f"postgresql+psycopg://fraud:{PASSWORDS['store']}@127.0.0.1:{free_port()}/fl",
                      FRAUDLENS_STATE__BACKEND="memory", FRAUDLENS_KAFKA__RETRY_BACKOFF_MAX_S="0.5")
    port, log = free_port(), tmp_path / "stream.log"
    process = start_cli(env, log, "--verbose", "stream", "--model", str(bundle), "--bootstrap",
                        f"127.0.0.1:{free_port()}", "--metrics-port", str(port))
    try:
        wait_for(lambda: log.read_text().count("store setup") >= 2, "two failed store connections", process, log)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        stop(process)
    text = log.read_text()
    assert "Connection refused" in text and "fraudlens_stream_retries" in metrics
    assert leaked(text + metrics) == []


@pytest.mark.slow
def test_serve_with_the_store_unreachable_says_so_without_a_password(tmp_path: Path, bundle: Path) -> None:
    env = planted_env(tmp_path, f"postgresql+psycopg://fraud:{PASSWORDS['store']}@127.0.0.1:{free_port()}/fl")
    done = run_cli(env, "--verbose", "serve", "--port", str(free_port()), "--model", str(bundle))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "error: cannot reach the alert store at postgresql+psycopg://fraud:***@127.0.0.1" in done.stderr
    assert leaked(done.stdout + done.stderr) == []


@pytest.mark.slow
@pytest.mark.integration
def test_serve_responses_and_logs_hold_no_password(tmp_path: Path, bundle: Path, pg_url: str) -> None:
    # PostgreSQL here trusts local connections, so a password in the URL is carried and ignored:
    # a real store URL with a real password in it, on a working store.
    store_url = pg_url.replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PASSWORDS['store']}@")
    assert PASSWORDS["store"] in store_url
    env = planted_env(tmp_path, store_url)
    created = run_cli(env, "keys", "create", "--role", "scorer")
    assert created.returncode == 0, created.stderr[-2000:]
    key = created.stdout.strip()
    port, log = free_port(), tmp_path / "serve.log"
    process = start_cli(env, log, "serve", "--port", str(port), "--model", str(bundle))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, "the API", process, log)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        responses = [ready, httpx.get(f"{base}/healthz", timeout=5), httpx.get(f"{base}/metrics", timeout=5),
                     httpx.get(f"{base}/v1/alerts", timeout=5),  # 401: no key
                     httpx.post(f"{base}/v1/score", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                                json={"transaction_id": "t1", "timestamp": "2026-01-01T00:00:00", "card_id": "c1",
                                      "merchant_id": "m1", "amount": 5.0})]
    finally:
        stop(process)
    # Not vacuous: the failure is reported, with the URL shown masked.
    assert ready.status_code == 503 and "redis://:***@127.0.0.1" in ready.json()["detail"]
    assert responses[-1].status_code == 503
    text = log.read_text()
    assert "redis://:***@127.0.0.1" in text
    everything = text + created.stdout + created.stderr + "".join(
        f"{r.status_code} {r.headers} {r.text}" for r in responses)
    assert leaked(everything) == []


def test_redaction_import_respects_the_package_order() -> None:
    # explain is below api and streaming: the helper imports nothing above it.
    done = subprocess.run(
        [sys.executable, "-c", "import sys, explain.redaction; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in {'api', 'streaming', 'fraudlens'}))"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert done.stdout.strip() == "[]"


def test_openai_backend_id_on_cards_masks_a_password_in_its_base_url() -> None:
    from explain.backends.openai_compat import OpenAIBackend

    backend = OpenAIBackend("https://svc:OpenaiKey-9043@llm.internal/v1", "m", api_key="OpenaiKey-9043")
    assert backend.model_id == "m@https://svc:***@llm.internal/v1"

