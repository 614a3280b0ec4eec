"""docs/configuration.md is generated from the settings classes and must stay what they say."""

from __future__ import annotations

import difflib
from pathlib import Path

from cli_processes import REPO, cli_env, run_cli

from fraudlens.commands.config import settings_markdown

PAGE = REPO / "docs" / "configuration.md"
REGENERATE = ".venv/bin/fraudlens config --markdown > docs/configuration.md"


def test_committed_configuration_page_is_the_generated_one() -> None:
    generated = settings_markdown()
    committed = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
    if committed != generated:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), generated.splitlines(True),
                                            "docs/configuration.md (committed)", "generated", n=1))
        raise AssertionError(f"docs/configuration.md is out of date with the settings classes; regenerate it with\n"
                             f"    {REGENERATE}\nand commit it. Difference:\n{diff[:4000]}")


def test_the_command_prints_the_page_whatever_the_environment(tmp_path: Path) -> None:
    # Defaults come from the classes: the work dir, a set value and a planted secret change nothing.
    env = cli_env(tmp_path, FRAUDLENS_KAFKA__BATCH_SIZE="7", FRAUDLENS_API__SESSION_SECRET="Planted-Secret-991",
                  FRAUDLENS_STORE__URL="postgresql+psycopg://u:StorePw-1@db/x")
    done = run_cli(env, "config", "--markdown")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == settings_markdown()
    assert "Planted-Secret-991" not in done.stdout and "StorePw-1" not in done.stdout


def test_every_setting_has_a_row_and_secrets_show_no_default() -> None:
    from fraudlens.commands.config import settings_rows
    from fraudlens.settings import Settings

    page = settings_markdown()
    for variable, _, _ in settings_rows(Settings()):
        assert f"`{variable}`" in page, variable
    for line in page.splitlines():
        if "_SECRET`" in line or "_KEY`" in line:
            assert "*(secret)*" in line, line
    assert "`<work_dir>/models`" in page and "`sqlite:///<work_dir>/fraudlens.db`" in page
