"""The model registry: its champion pointer, the append-only history, and rollback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from detection import ModelBundle, ModelRegistry, RegistryError
from detection.registry import DIRECT_PROMOTION, HISTORY_FILE


def test_register_list_promote_and_load_the_champion(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.list_versions() == []
    with pytest.raises(RegistryError, match="no champion yet"):
        registry.champion()
    path = registry.register(tiny_bundle)
    assert path == tmp_path / "models" / tiny_bundle.version
    assert registry.list_versions() == [tiny_bundle.version]
    with pytest.raises(RegistryError, match="not in registry"):
        registry.promote("fl-000000000000")
    registry.promote(tiny_bundle.version)
    assert (tmp_path / "models" / "CHAMPION").read_text() == tiny_bundle.version + "\n"
    assert registry.champion().version == tiny_bundle.version
    # No temporary files are left beside the pointer and its history.
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["CHAMPION", HISTORY_FILE, tiny_bundle.version]


def test_register_can_promote_in_one_step(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(tiny_bundle, promote=True)
    assert registry.champion_version() == tiny_bundle.version


def _registry_of(tiny_bundle: ModelBundle, root: Path, *names: str) -> ModelRegistry:
    """A registry holding ``tiny_bundle`` under several version names (rollback only moves the pointer)."""
    registry = ModelRegistry(root)
    registry.register(tiny_bundle)
    for name in names:
        shutil.copytree(root / tiny_bundle.version, root / name)
    return registry


def test_every_champion_change_is_recorded_in_an_append_only_history(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-b", "fl-c")
    assert registry.history() == []
    first = registry.promote("fl-b", actor="alice", reasons=["gate approved"])
    assert first is not None
    assert (first.action, first.version, first.previous, first.actor) == ("promote", "fl-b", None, "alice")
    registry.promote("fl-c")  # a direct promotion (the demo's path) is recorded too, and says so
    assert registry.promote("fl-c") is None  # promoting the champion again changes and records nothing
    lines = [json.loads(line) for line in (tmp_path / HISTORY_FILE).read_text().splitlines()]
    assert [(e["action"], e["version"], e["previous"], e["actor"]) for e in lines] == [
        ("promote", "fl-b", None, "alice"), ("promote", "fl-c", "fl-b", "unknown")]
    assert lines[0]["reasons"] == ["gate approved"] and lines[1]["reasons"] == [DIRECT_PROMOTION]
    assert all(e["at"].endswith("Z") for e in lines)
    assert registry.history()[-1].version == registry.champion_version() == "fl-c"


def test_rollback_returns_to_the_champion_before_the_current_one_and_walks_further_back(
    tiny_bundle: ModelBundle, tmp_path: Path,
) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-a", "fl-b", "fl-c")
    for version in ("fl-a", "fl-b", "fl-c"):
        registry.promote(version)
    entry = registry.rollback(actor="bob")
    assert (entry.action, entry.version, entry.previous, entry.actor) == ("rollback", "fl-b", "fl-c", "bob")
    assert registry.champion_version() == "fl-b"
    assert registry.rollback().version == "fl-a"  # twice: further back, never back to fl-c
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback()
    assert registry.champion_version() == "fl-a"
    assert [e.action for e in registry.history()] == ["promote"] * 3 + ["rollback"] * 2


def test_rollback_after_a_new_promotion_returns_to_the_one_it_replaced(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-a", "fl-b", "fl-c", "fl-d")
    for version in ("fl-a", "fl-b", "fl-c"):
        registry.promote(version)
    registry.rollback()  # -> fl-b
    registry.promote("fl-d")
    assert registry.rollback().version == "fl-b"
    assert registry.rollback().version == "fl-a"


def test_rollback_refuses_without_history_or_when_the_pointer_was_edited_by_hand(
    tiny_bundle: ModelBundle, tmp_path: Path,
) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-a", "fl-b")
    with pytest.raises(RegistryError, match="has no champion"):
        registry.rollback()
    registry.promote("fl-a")
    with pytest.raises(RegistryError, match="first champion"):
        registry.rollback()
    registry.promote("fl-b")
    (tmp_path / "CHAMPION").write_text(tiny_bundle.version + "\n")  # someone bypassed the registry
    with pytest.raises(RegistryError, match="changed outside the registry"):
        registry.rollback()
    assert registry.champion_version() == tiny_bundle.version


def test_a_registry_from_before_the_history_can_still_roll_back_its_first_promotion(
    tiny_bundle: ModelBundle, tmp_path: Path,
) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-b")
    (tmp_path / "CHAMPION").write_text(tiny_bundle.version + "\n")  # the pointer as older versions wrote it
    with pytest.raises(RegistryError, match="no champion change is recorded"):
        registry.rollback()
    registry.promote("fl-b")
    assert registry.history()[0].previous == tiny_bundle.version
    assert registry.rollback().version == tiny_bundle.version


def test_promotion_checks_the_champion_it_expects_and_missing_targets(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = _registry_of(tiny_bundle, tmp_path, "fl-a", "fl-b")
    registry.promote("fl-a")
    with pytest.raises(RegistryError, match="champion changed to fl-a"):
        registry.promote("fl-b", expect_champion=None)
    registry.promote("fl-b", expect_champion="fl-a")
    shutil.rmtree(tmp_path / "fl-a")  # the version to return to was deleted
    with pytest.raises(RegistryError, match="cannot roll back to fl-a: not in registry"):
        registry.rollback()
    assert registry.champion_version() == "fl-b" and len(registry.history()) == 2


def test_a_damaged_history_line_is_reported_not_skipped(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = _registry_of(tiny_bundle, tmp_path)
    registry.promote(tiny_bundle.version)
    with open(tmp_path / HISTORY_FILE, "a") as handle:
        handle.write("{not json\n")
    with pytest.raises(RegistryError, match="line 2 is not a history entry"):
        registry.history()
