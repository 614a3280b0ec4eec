"""The real pages in headless Chromium (Debian's package, driven by Selenium): log in, open the queue,
open an alert, record a decision, see it persisted.

Screenshots go to ``$FRAUDLENS_TEST_ARTIFACTS`` (CI uploads that folder), else to the test's tmp_path.
Skips on a laptop without chromium/chromedriver/selenium; fails in CI.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from process_guard import descendants, process_table, stop_processes

from api.keys import Role

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1366,900")


def _require_browser() -> None:
    import importlib.util

    missing = [what for what, ok in (("selenium", importlib.util.find_spec("selenium") is not None),
                                     (str(CHROMIUM), CHROMIUM.exists()), (str(CHROMEDRIVER), CHROMEDRIVER.exists()))
               if not ok]
    if not missing:
        return
    message = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver; pip install selenium"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide the browser")
    pytest.skip(message)


@pytest.fixture
def live_desk(desk: Any) -> Iterator[tuple[Any, str]]:
    """The test's app served by a real uvicorn on a free port."""
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(desk.client.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield desk, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.implicitly_wait(5)
        yield driver
    finally:
        # Chromium's processes, seen before quit(): once chromedriver has exited, a browser
        # process that outlives it (a hung quit) is an orphan no longer found from chromedriver.
        browser_tree = descendants(driver.service.process.pid, process_table())
        try:
            driver.quit()
        finally:
            stop_processes(browser_tree)


def _wait_for_url(browser: Any, ok: Callable[[str], bool], timeout_s: float = 10.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout_s).until(lambda driver: ok(driver.current_url),
                                           message="the page did not navigate where expected")


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FRAUDLENS_TEST_ARTIFACTS", tmp_path / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.integration
@pytest.mark.slow
def test_investigator_works_an_alert_in_a_real_browser(live_desk: tuple[Any, str], browser: Any, tmp_path: Path,
                                                       sample_records: list[dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    desk, base = live_desk
    seeded = desk.seed(sample_records, 8)
    top = max(seeded, key=lambda r: r["score"])
    artifacts = _artifacts(tmp_path)

    browser.get(f"{base}/ui/alerts")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "key").send_keys(desk.keys[Role.INVESTIGATOR])
    browser.find_element(By.ID, "login").click()
    # A click returns before the navigation it starts has finished: wait for the page it leads to
    # (the implicit wait covers element lookups only; once this read the login page still, under load).
    _wait_for_url(browser, lambda url: url.endswith("/ui/alerts"))

    browser.find_element(By.LINK_TEXT, "Score").click()  # sort by score, highest first
    _wait_for_url(browser, lambda url: "sort=score" in url)
    links = browser.find_elements(By.CSS_SELECTOR, "a.alert-link")
    assert len(links) == 8 and links[0].text == top["transaction_id"]
    browser.save_screenshot(str(artifacts / "queue.png"))
    # The queue's shortcuts come from /static/queue.js: "/" focusing the filter proves the CSP let it run.
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "f-merchant"

    links[0].click()
    assert browser.find_element(By.CSS_SELECTOR, "svg.waterfall").is_displayed()
    assert browser.find_element(By.ID, "narrative-badge").text == "Template"
    browser.save_screenshot(str(artifacts / "alert.png"))

    browser.find_element(By.ID, "note").send_keys("cardholder denies the purchase")
    browser.find_element(By.ID, "btn-fraud").click()
    assert "Decision recorded" in browser.find_element(By.ID, "saved").text
    assert browser.find_element(By.ID, "status").text == "confirmed_fraud"
    assert "cardholder denies the purchase" in browser.find_element(By.ID, "timeline").text
    browser.save_screenshot(str(artifacts / "decided.png"))

    assert desk.store.get_alert(top["transaction_id"])["status"] == "confirmed_fraud"
    detail = desk.client.get(f"/v1/alerts/{top['transaction_id']}", headers=desk.headers(Role.VALIDATOR)).json()
    assert detail["decisions"][0]["note"] == "cardholder denies the purchase"
    assert (artifacts / "decided.png").stat().st_size > 0
