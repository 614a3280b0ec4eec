"""A directory of model bundles with a champion pointer.

::

    registry_dir/
        fl-3f9a0c1d2e4b/     a bundle (see detection.bundle)
        fl-77e0b5a91c02/
        CHAMPION             the version scoring uses, one line

``CHAMPION`` is replaced atomically (write a temporary file, fsync, rename), so a
reader sees the old or the new version, never half a file. Promotion gates
(out-of-time checks before a challenger replaces the champion) come later.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from detection.bundle import MANIFEST_FILE, BundleError, ModelBundle

CHAMPION_FILE = "CHAMPION"


class RegistryError(ValueError):
    """The registry has no such version or no champion yet."""


class ModelRegistry:
    """Bundles under ``root``; ``champion()`` is the one in production.

    >>> reg = ModelRegistry(Path("runs/models"))  # no I/O until a method is called
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list_versions(self) -> list[str]:
        """Registered versions, oldest first (by manifest time, then name)."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()]
        return [p.name for p in sorted(found, key=lambda p: ((p / MANIFEST_FILE).stat().st_mtime, p.name))]

    def register(self, bundle: ModelBundle, *, promote: bool = False) -> Path:
        """Save ``bundle`` into the registry (a no-op copy if that version is already there)."""
        path = bundle.save(self.root)
        if promote:
            self.promote(bundle.version)
        return path

    def promote(self, version: str) -> None:
        """Make ``version`` the champion."""
        if version not in self.list_versions():
            raise RegistryError(f"cannot promote {version}: not in registry {self.root}; "
                                f"registered: {', '.join(self.list_versions()) or 'none'}")
        fd, tmp = tempfile.mkstemp(prefix=".CHAMPION.", dir=self.root)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / CHAMPION_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def champion_version(self) -> str:
        pointer = self.root / CHAMPION_FILE
        if not pointer.is_file():
            raise RegistryError(f"registry {self.root} has no champion yet; train a model and promote it "
                                "(ModelRegistry.register(bundle, promote=True))")
        return pointer.read_text().strip()

    def champion(self, **load_options: object) -> ModelBundle:
        """Load the champion bundle (``load_options`` go to :meth:`ModelBundle.from_path`)."""
        version = self.champion_version()
        try:
            return ModelBundle.from_path(self.root / version, **load_options)  # type: ignore[arg-type]
        except BundleError as exc:
            raise RegistryError(f"the champion {version} of registry {self.root} cannot be loaded: {exc}") from None

    def load(self, version: str, **load_options: object) -> ModelBundle:
        if version not in self.list_versions():
            raise RegistryError(f"version {version} is not in registry {self.root}")
        return ModelBundle.from_path(self.root / version, **load_options)  # type: ignore[arg-type]
