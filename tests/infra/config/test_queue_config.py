"""``training.queue`` and ``addons.kueue``: what the queue accepts, and every mistake as one line naming its key."""
from __future__ import annotations

import pytest

from infra.config import ConfigError, TrainingQueueConfig, parse_config, queue_pools, queue_settings
from infra.config.queue import scaled_devices

pytestmark = pytest.mark.unit

GPU = {"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["g6"], "limits": {"cpu": 96, "memory": "768Gi", "gpu": 4}}
CPU = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config({"serving": {"enabled": False}, **raw}, stack="dev")
    return exc.value.problems


@pytest.mark.parametrize("raw,needle", [
    ({"training": {"queue": {"share": 1.5}}}, "training.queue.share: 1.5 is not a share of the node pools' limits; "
                                              "use 0 < share <= 1"),
    ({"training": {"queue": {"share": 0}}}, "training.queue.share: 0 is not a share"),
    ({"training": {"queue": {"share": True}}}, "training.queue.share: True is a boolean; a number is required here"),
    ({"training": {"queue": {"pools": ["nope"]}}}, "training.queue.pools: no node pool named 'nope' for a ResourceFlavor "
                                                   "(pools: cpu, gpu, inf1)"),
    ({"training": {"queue": {"pools": []}}}, "training.queue.pools: is empty"),
    ({"training": {"queue": {"pools": ["cpu", "cpu"]}}}, "training.queue.pools: cpu listed more than once"),
    ({"training": {"queue": {"pools": ["Bad_Name"]}}}, "training.queue.pools: 'Bad_Name' must be a node pool name"),
    ({"training": {"queue": {"pools": ["gpu"]}}}, "training.queue.pools: leaves out pool 'cpu', where data prep runs"),
    ({"training": {"device": "gpu", "queue": {"pools": ["cpu"]}}},
     "training.queue.pools: leaves out pool 'gpu', where the training job runs"),
    ({"training": {"queue": {}}, "addons": {"kueue": {"enabled": False}}},
     "training.queue: is set while addons.kueue.enabled is false"),
    ({"training": {"device": "gpu", "queue": {"share": 0.25}}},
     "training.queue.share: 0.25 of the 4 GPUs of pool 'gpu' is a quota of 1, but the training job needs 2"),
    ({"addons": {"kueue": {"version": "0.20.0"}}}, "addons.kueue.version: 0.20.0 is not pinned; the platform installs "
                                                  "Kueue 0.19.2"),
    ({"training": {"queue": {"podsReadyTimeoutMinutes": 0}}}, "training.queue.podsReadyTimeoutMinutes"),
    ({"training": {"queue": {"sharee": 0.5}}}, "training.queue.sharee: unknown key; did you mean 'share'?"),
])
def test_bad_queue_config_is_one_line_naming_the_key(raw, needle):
    found = problems(raw)
    assert any(needle in p for p in found), found
    assert all("\n" not in p and "Traceback" not in p and p.startswith("eks-ml-platform:") for p in found)


def test_kueue_set_on_needs_karpenter_and_the_workload_namespace():
    from infra.addons import requirement_problems

    cfg = parse_config({"training": {"enabled": False}, "serving": {"enabled": False},
                        "addons": {"kueue": {"enabled": True}, "karpenter": {"enabled": False}},
                        "cluster": {"systemNodes": {"minSize": 3, "desiredSize": 3}}}, stack="dev")
    found = requirement_problems(cfg)
    assert any(p.startswith("addons.kueue.enabled: true needs addons.karpenter.enabled: true") for p in found), found
    assert any("needs training.enabled/serving.enabled: true" in p for p in found), found
    # on by default with training: no switch of its own to blame
    assert not [p for p in requirement_problems(parse_config({}, stack="dev")) if "kueue" in p]


def test_borrowing_lifts_the_share_check_and_the_pinned_version_passes():
    ok = parse_config({"serving": {"enabled": False}, "addons": {"kueue": {"version": "v0.19.2"}},
                       "training": {"device": "gpu", "queue": {"share": 0.25, "borrow": True}}}, stack="dev")
    assert queue_settings(ok.training).borrow and ok.addons.kueue.version == "v0.19.2"


def test_defaults_and_the_pools_that_get_a_flavor():
    cfg = parse_config({"serving": {"enabled": False}, "training": {"device": "gpu"}}, stack="dev")
    assert cfg.training.queue is None and queue_settings(cfg.training) == TrainingQueueConfig()
    assert TrainingQueueConfig(pools=None).pools is None  # an explicit null: the default pools
    assert [p.name for p in queue_pools(cfg.training, cfg.pools)] == ["cpu", "gpu"]
    named = parse_config({"nodePools": [GPU, CPU], "serving": {"enabled": False},
                          "training": {"device": "gpu", "queue": {"pools": ["gpu", "cpu"]}}}, stack="dev")
    assert [p.name for p in queue_pools(named.training, named.pools)] == ["cpu", "gpu"]  # plain pools first
    cpu_only = parse_config({"serving": {"enabled": False}, "training": {"device": "cpu"}}, stack="dev")
    assert [p.name for p in queue_pools(cpu_only.training, cpu_only.pools)] == ["cpu"]


def test_training_off_checks_only_the_pool_names():
    cfg = parse_config({"training": {"enabled": False, "queue": {"pools": ["inf1"]}}, "serving": {"enabled": False},
                        "addons": {"kueue": {"enabled": True}}}, stack="dev")
    assert queue_settings(cfg.training).pools == ["inf1"]
    assert parse_config({"training": {"enabled": False}, "serving": {"enabled": False}}, stack="dev")


@pytest.mark.parametrize("limit,share,want", [(4, 1.0, 4), (4, 0.5, 2), (4, 0.3, 1), (32, 0.1, 3), (None, 0.5, 0)])
def test_scaled_devices_round_down(limit, share, want):
    assert scaled_devices(limit, share) == want
