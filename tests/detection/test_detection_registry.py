"""The model registry and its champion pointer."""

from __future__ import annotations

from pathlib import Path

import pytest

from detection import ModelBundle, ModelRegistry, RegistryError


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
    # No temporary files are left beside the pointer.
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["CHAMPION", tiny_bundle.version]


def test_register_can_promote_in_one_step(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(tiny_bundle, promote=True)
    assert registry.champion_version() == tiny_bundle.version
