"""The deploy gate's rule (pure logic; the real deploy is in tests/e2e/test_model_lifecycle)."""

from __future__ import annotations

import pytest

from model.deploy import DeployRefused, ModelFacts, check_quality

SERVING = ModelFacts("car_price_xgb:old", 768.0, "abc")


@pytest.mark.parametrize("mae", [700.0, 768.0, 768.0 * 1.02])
def test_equal_better_or_within_two_percent_passes(mae: float) -> None:
    assert "MAE" in check_quality(ModelFacts("car_price_xgb:new", mae, "abc"), SERVING, False)


def test_more_than_two_percent_worse_is_refused_unless_forced() -> None:
    worse = ModelFacts("car_price_xgb:new", 768.0 * 1.021, "abc")
    with pytest.raises(DeployRefused, match=r"\+2\.1%.*FORCE=1"):
        check_quality(worse, SERVING, force=False)
    assert "forced" in check_quality(worse, SERVING, force=True)


def test_unknown_metrics_need_force() -> None:
    """The candidate's, or the serving model's (one stored before metrics were kept)."""
    unknown = ModelFacts("car_price_xgb:new", None, None)
    serving_unknown = ModelFacts(SERVING.tag, None, None)
    candidate = ModelFacts("car_price_xgb:new", 700.0, "abc")
    for new, old in ((unknown, SERVING), (candidate, serving_unknown)):
        with pytest.raises(DeployRefused, match="unknown"):
            check_quality(new, old, force=False)
        assert "forced" in check_quality(new, old, force=True)


def test_different_training_data_is_said() -> None:
    other = ModelFacts("car_price_xgb:new", 760.0, "def")
    assert "different data" in check_quality(other, SERVING, force=False)
