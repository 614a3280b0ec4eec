"""Bundle persistence: reproducibility, round trip, and load errors a person can act on."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detection import BundleError, ModelBundle, compute_features, version_id
from detection.bundle import DETERMINISTIC_FILES, MANIFEST_FILE
from features.pipeline import FeaturePipeline
from fraudlens.settings import ModelSettings


def _copy(bundle: ModelBundle, tmp_path: Path) -> Path:
    assert bundle.path is not None
    return Path(shutil.copytree(bundle.path, tmp_path / bundle.version))


def test_retraining_gives_the_same_version_and_identical_bytes(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline, model_settings: ModelSettings,
    train_tiny: Callable[..., ModelBundle], tmp_path: Path,
) -> None:
    again = train_tiny(sim_frame, pipeline, model_settings)
    path = again.save(tmp_path)
    assert again.version == tiny_bundle.version
    assert tiny_bundle.path is not None
    for name in DETERMINISTIC_FILES:
        assert (path / name).read_bytes() == (tiny_bundle.path / name).read_bytes(), name
    first, second = (json.loads((p / MANIFEST_FILE).read_text()) for p in (tiny_bundle.path, path))
    for volatile in ("created_at", "code_revision"):
        first.pop(volatile), second.pop(volatile)
    assert first == second


def test_version_depends_on_data_seed_and_window() -> None:
    base = {"data_sha256": "a", "seed": 1, "train_window": ["2026-01-01", "2026-01-28"]}
    assert version_id(base) == version_id(dict(reversed(list(base.items()))))
    assert version_id(base) != version_id({**base, "seed": 2})
    assert version_id(base) != version_id({**base, "data_sha256": "b"})
    assert version_id(base) != version_id({**base, "train_window": ["2026-01-01", "2026-01-27"]})


def test_loaded_bundle_scores_like_the_trained_one(tiny_bundle: ModelBundle) -> None:
    assert tiny_bundle.path is not None
    loaded = ModelBundle.from_path(tiny_bundle.path)
    X = np.random.default_rng(0).normal(size=(50, len(loaded.feature_names))) * 10
    X[::3, 5] = np.nan
    np.testing.assert_array_equal(loaded.score(X), tiny_bundle.score(X))
    np.testing.assert_array_equal(loaded.margin(X), tiny_bundle.margin(X))
    np.testing.assert_array_equal(loaded.anomaly_score(X), tiny_bundle.anomaly_score(X))
    assert loaded.threshold == tiny_bundle.threshold and loaded.metrics == tiny_bundle.metrics
    single = loaded.score(X[7])
    assert single.shape == (1,) and single[0] == pytest.approx(loaded.score(X)[7], rel=1e-6)
    assert loaded.feature_settings == tiny_bundle.feature_settings
    with pytest.raises(ValueError, match=f"expects {len(loaded.feature_names)} features, got 3"):
        loaded.score(np.zeros((1, 3)))


def test_saving_the_same_version_again_replaces_it_cleanly(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    first = tiny_bundle.save(tmp_path)
    second = tiny_bundle.save(tmp_path)
    assert first == second and [p.name for p in tmp_path.iterdir()] == [tiny_bundle.version]
    ModelBundle.from_path(second)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist .* pass the DIR/<version>/"):
        ModelBundle.from_path(tmp_path / "nope")


def test_missing_file_is_named(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path)
    (path / "threshold.json").unlink()
    with pytest.raises(BundleError, match="incomplete: missing threshold.json"):
        ModelBundle.from_path(path)


def test_directory_of_bundles_gets_a_hint(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    _copy(tiny_bundle, tmp_path)
    with pytest.raises(BundleError, match=f"directory of model bundles.*{tiny_bundle.version}"):
        ModelBundle.from_path(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("calibrator.json", "{not json", "calibrator.json is not readable JSON"),
        ("threshold.json", '{"kind": "magic"}', "malformed"),
        ("model.ubj", "garbage", "model.ubj is not an XGBoost model"),
        ("feature_spec.json", '{"format": 99}', "has format 99"),
    ],
)
def test_damaged_files_are_reported(tiny_bundle: ModelBundle, tmp_path: Path, name: str, content: str,
                                    message: str) -> None:
    path = _copy(tiny_bundle, tmp_path)
    (path / name).write_text(content)
    with pytest.raises(BundleError, match=message):
        ModelBundle.from_path(path)


class _OtherPipeline:
    def __init__(self, names: list[str]) -> None:
        self.feature_names = names


def test_feature_spec_must_match_the_current_pipeline(tiny_bundle: ModelBundle) -> None:
    assert tiny_bundle.path is not None
    names = list(tiny_bundle.feature_names)
    renamed = [*names[:-1], "brand_new_feature"]
    with pytest.raises(BundleError, match=r"needs \['mcc_code'\].*never saw.*Retrain"):
        ModelBundle.from_path(tiny_bundle.path, pipeline=_OtherPipeline(renamed))
    with pytest.raises(BundleError, match="different order"):
        ModelBundle.from_path(tiny_bundle.path, pipeline=_OtherPipeline(names[::-1]))
    ModelBundle.from_path(tiny_bundle.path, pipeline=_OtherPipeline(renamed), check_pipeline=False)


def test_small_batches_use_compiled_trees_that_match_xgboost_bit_for_bit(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline
) -> None:
    X = compute_features(sim_frame, pipeline).X[:3000]
    reference = tiny_bundle.booster.inplace_predict(X, predict_type="margin").astype(np.float64)
    tiny_bundle.compile()
    assert tiny_bundle._compiled is not None
    np.testing.assert_array_equal(tiny_bundle._compiled.margin(X), reference)
    # Rows one at a time (compiled path) and the whole batch (XGBoost path) agree exactly.
    singles = np.concatenate([tiny_bundle.margin(X[i]) for i in range(0, 3000, 97)])
    np.testing.assert_array_equal(singles, tiny_bundle.margin(X)[::97])


def test_scoring_falls_back_to_xgboost_when_trees_cannot_be_compiled(
    tiny_bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detection import trees

    def unsupported(*_args: object) -> None:
        raise ValueError("not supported")

    monkeypatch.setattr(trees.CompiledTrees, "_parse", classmethod(unsupported))
    assert tiny_bundle.path is not None
    loaded = ModelBundle.from_path(tiny_bundle.path)
    assert loaded._compiled is None
    X = np.random.default_rng(1).normal(size=(3, len(loaded.feature_names)))
    np.testing.assert_array_equal(loaded.score(X[:1]), tiny_bundle.score(X[:1]))
