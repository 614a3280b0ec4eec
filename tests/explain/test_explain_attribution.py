"""SHAP attributions: additivity against the model margin, slicing, grouping, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explain.attribution import Attribution, TreeAttributor
from explain.errors import AdditivityError, FeatureMismatchError
from explain.reasons import FAMILY_OF


def test_batch_attribution_adds_up_to_the_bundle_margin(tiny_bundle, attributor, feature_rows) -> None:
    X = feature_rows.to_numpy()
    attr = attributor.attribute(X)
    assert attr.is_batch and attr.values.shape == X.shape
    np.testing.assert_allclose(attr.base_value + attr.values.sum(axis=1), tiny_bundle.margin(X), atol=1e-4)
    # The value object's own check, against the model's margin, is what attribute() ran.
    attr.check_additivity(tiny_bundle.margin(X))


def test_single_row_attribution_adds_up_and_keeps_missing_values(tiny_bundle, attributor, feature_rows) -> None:
    row = feature_rows.iloc[3].copy()
    row["is_new_device"] = np.nan
    one = attributor.attribute_one(row.to_numpy())
    assert not one.is_batch
    assert one.margin == pytest.approx(float(tiny_bundle.margin(row.to_numpy()[None, :])[0]), abs=1e-4)
    assert np.isnan(one.feature_values[one.feature_names.index("is_new_device")])


def test_a_margin_from_another_model_raises_additivity_error(tiny_bundle, feature_rows) -> None:
    shifted = TreeAttributor(tiny_bundle.booster, tiny_bundle.feature_names, "tiny-1",
                             margin=lambda X: tiny_bundle.margin(X) + 0.01).setup()
    with pytest.raises(AdditivityError, match="additivity") as info:
        shifted.attribute(feature_rows.to_numpy()[:5])
    assert isinstance(info.value, ValueError) and info.value.max_error == pytest.approx(0.01, abs=1e-5)


def test_feature_order_mismatch_is_refused(tiny_bundle) -> None:
    wrong = list(reversed(tiny_bundle.feature_names))
    with pytest.raises(FeatureMismatchError, match="position 0"):
        TreeAttributor(tiny_bundle.booster, wrong, "tiny-1").setup()


def test_frames_are_reordered_by_name(attributor, feature_rows) -> None:
    shuffled = feature_rows.iloc[:4, ::-1]
    np.testing.assert_allclose(attributor.attribute(shuffled).values, attributor.attribute(feature_rows.iloc[:4]).values)
    with pytest.raises(FeatureMismatchError):
        attributor.attribute(feature_rows.iloc[:4, :10])


def test_slicing_grouping_and_top(attributor, feature_rows) -> None:
    attr = attributor.attribute(feature_rows.iloc[:6], ids=[f"t{i}" for i in range(6)])
    part = attr[1:3]
    assert part.is_batch and len(part) == 2 and part.ids == ("t1", "t2")
    row = attr[2]
    top = row.top(3)
    assert [abs(c.value) for c in top] == sorted((abs(c.value) for c in top), reverse=True)
    assert abs(top[0].value) == pytest.approx(np.abs(row.values).max())
    grouped = attr.group(FAMILY_OF)
    assert set(grouped.feature_names) == set(FAMILY_OF.values())
    np.testing.assert_allclose(grouped.margin, attr.margin, atol=1e-9)
    assert grouped[0].as_dict()["novelty"] == pytest.approx(
        sum(v for k, v in attr[0].as_dict().items() if FAMILY_OF[k] == "novelty"))


def test_serialisation_round_trip_keeps_nan_and_ids(attributor, feature_rows) -> None:
    attr = attributor.attribute(feature_rows.iloc[:3], ids=["a", "b", "c"])
    text = json.dumps(attr.to_dict())  # strict JSON: NaN feature values became null
    back = Attribution.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.values, attr.values)
    np.testing.assert_array_equal(np.isnan(back.feature_values), np.isnan(attr.feature_values))
    assert back.ids == attr.ids and back.model_version == attr.model_version
    frame = attr.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == ["a", "b", "c"]


def test_values_are_read_only(attributor, feature_rows) -> None:
    attr = attributor.attribute(feature_rows.iloc[:2])
    with pytest.raises(ValueError):
        attr.values[0, 0] = 1.0


def test_real_bundle_attribution_is_additive(real_bundle, sim_file) -> None:
    from detection.frames import compute_features
    from features.io import read_transactions
    from features.pipeline import FeaturePipeline

    frame = read_transactions(sim_file).frame.iloc[-400:]
    X = compute_features(frame, FeaturePipeline.from_settings(real_bundle.feature_settings)).X
    attr = TreeAttributor.from_bundle(real_bundle).setup().attribute(X)
    np.testing.assert_allclose(attr.margin, real_bundle.margin(X), atol=1e-4)
