"""An app built by any server (not only `fraudlens serve`) masks secrets in every log line."""

from __future__ import annotations

import logging
from pathlib import Path

from fraudlens.settings import Settings

PASSWORDS = {"redis": "RedisPw-7781", "openai": "OpenaiKey-9043"}


def test_an_app_built_by_any_server_masks_secrets_in_its_logs(tmp_path: Path) -> None:
    import io

    from fastapi.testclient import TestClient

    from api import create_app

    settings = Settings(work_dir=tmp_path, narrative={"backend": "template", "openai_api_key": PASSWORDS["openai"]})
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with TestClient(create_app(settings, load_model=False)):
            # A library logging a URL and a key it was handed, after the app started.
            logging.getLogger("some.client").warning("retrying redis://:%s@cache/0 with key %s",
                                                     PASSWORDS["redis"], PASSWORDS["openai"])
    finally:
        root.removeHandler(handler)
        for existing in list(handler.filters):
            handler.removeFilter(existing)
    text = out.getvalue()
    assert "retrying redis://:***@cache/0 with key ***" in text
    assert not any(password in text for password in PASSWORDS.values())
