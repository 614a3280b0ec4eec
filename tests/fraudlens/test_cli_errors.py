"""A person's mistake is one ``error:`` line that names what to fix, and exit code 2; never a traceback.

Each case runs the real command line in a subprocess (``python -m fraudlens``), as a person would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_processes import cli_env, run_cli

from streaming.broker import free_port


def assert_one_error_line(done: subprocess.CompletedProcess[str], *names: str) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ")
    for name in names:
        assert name in lines[0]
    return lines[0]


def test_environment_value_of_the_wrong_type_names_the_variable(tmp_path: Path) -> None:
    done = run_cli(cli_env(tmp_path, FRAUDLENS_KAFKA__BATCH_SIZE="lots"), "config")
    line = assert_one_error_line(done, "FRAUDLENS_KAFKA__BATCH_SIZE", "integer")
    assert "'lots'" in line


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "fraudlens.yaml"
    config.write_text("kafka:\n  bootstrap: [broker-1:9092\n")
    done = run_cli(cli_env(tmp_path), "--config", str(config), "config")
    assert_one_error_line(done, str(config), "line 3", "not valid YAML")


def test_yaml_python_tag_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    config = tmp_path / "evil.yaml"
    config.write_text(f'kafka: !!python/object/apply:os.system ["touch {marker}"]\n')
    done = run_cli(cli_env(tmp_path, FRAUDLENS_CONFIG=str(config)), "config")
    assert_one_error_line(done, str(config), "python/object", "refused")
    assert not marker.exists()


def test_yaml_that_is_not_a_mapping_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "list.yaml"
    config.write_text("- kafka\n- state\n")
    done = run_cli(cli_env(tmp_path), "--config", str(config), "config")
    assert_one_error_line(done, str(config), "mapping")


def test_unknown_key_in_config_file_names_it(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("kafka:\n  bath_size: 10\n")
    done = run_cli(cli_env(tmp_path), "--config", str(config), "config")
    assert_one_error_line(done, str(config), "kafka.bath_size", "unknown setting")


@pytest.mark.slow
def test_serve_with_the_store_unreachable_is_one_line(tmp_path: Path) -> None:
    # A closed port: a real connection refusal, not a mock.
    url = f"postgresql+psycopg://fraud:hunter2pw@127.0.0.1:{free_port()}/fraudlens"
    done = run_cli(cli_env(tmp_path, FRAUDLENS_STORE__URL=url), "serve", "--port", str(free_port()))
    line = assert_one_error_line(done, "FRAUDLENS_STORE__URL", "cannot reach the alert store", "Connection refused")
    assert "hunter2pw" not in done.stderr + done.stdout
    assert "fraud:***@127.0.0.1" in line


def test_any_command_with_the_store_unreachable_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://fraud:hunter2pw@127.0.0.1:{free_port()}/fraudlens"
    done = run_cli(cli_env(tmp_path, FRAUDLENS_STORE__URL=url), "narrate", "--once", "--backend", "template")
    assert_one_error_line(done, "FRAUDLENS_STORE__URL", "Connection refused")
    assert "hunter2pw" not in done.stderr + done.stdout


def test_a_bug_keeps_its_traceback_with_secrets_masked(capsys: pytest.CaptureFixture[str]) -> None:
    from fraudlens.cli import _Cli

    cli = _Cli(pretty_exceptions_enable=False)

    @cli.command()
    def boom() -> None:
        raise RuntimeError("lost the connection to redis://:RedisPw-1234@cache:6379/0")

    @cli.command()
    def other() -> None:  # a second command keeps `boom` a subcommand, as in the real CLI
        """Unused."""

    with pytest.raises(SystemExit) as exited:
        cli(["boom"], prog_name="fraudlens")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: lost the connection to redis://:***@cache:6379/0" in err
    assert "RedisPw-1234" not in err
