"""serving.modelVersion and training.promotion: one-line errors naming the key, and where they end up."""
from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config
from workloads.sentiment.manifests import server_env
from workloads.sentiment.plan import plan as serving_plan
from workloads.sentiment.settings import ServingSettings
from workloads.training.pods import plan as training_plan
from workloads.training.pods import trainer_args
from workloads.training.settings import TrainingSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("raw, key", [
    ({"serving": {"modelVersion": "../v1"}}, "serving.modelVersion"),
    ({"serving": {"modelVersion": ""}}, "serving.modelVersion"),
    ({"training": {"promotion": {"minAccuracy": 1.5}}}, "training.promotion.minAccuracy"),
    ({"training": {"promotion": {"maxRegression": -0.1}}}, "training.promotion.maxRegression"),
])
def test_bad_lifecycle_keys_are_one_line_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack="dev")
    assert any(key in p and "\n" not in p for p in exc.value.problems), exc.value.problems


def test_defaults_reach_the_trainer_args_and_the_server_env():
    cfg = parse_config({"training": {"device": "cpu"}, "serving": {"device": "cpu"}}, stack="dev")
    ts = TrainingSettings.from_config(cfg)
    args = trainer_args(cfg.training, training_plan(ts), checkpoint_dir="/models/checkpoints/x")
    assert args[-4:] == ["--min-accuracy", "0.7", "--max-regression", "0.02"]
    ss = ServingSettings.from_config(cfg)
    assert {"name": "MODEL_VERSION", "value": "latest"} in server_env(ss, serving_plan(ss))


def test_a_pinned_version_is_the_server_env():
    cfg = parse_config({"serving": {"device": "cpu", "modelVersion": "v20260101T000000Z-0123abcd"},
                        "training": {"promotion": {"minAccuracy": 0.9, "maxRegression": 0}}}, stack="dev")
    ss = ServingSettings.from_config(cfg)
    assert {"name": "MODEL_VERSION", "value": "v20260101T000000Z-0123abcd"} in server_env(ss, serving_plan(ss))
    assert cfg.training.promotion.min_accuracy == 0.9 and cfg.training.promotion.max_regression == 0
