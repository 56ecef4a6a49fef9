"""Generated docs never drift: Pulumi.yaml's config block and the README table come from PlatformConfig."""
from __future__ import annotations

import yaml

from infra.config import PlatformConfig, parse_config
from infra.config_docs import pulumi_yaml_config, rows
from infra.readme_sync import README, render_readme
from tests.conftest import REPO
import pytest

pytestmark = pytest.mark.unit


def test_pulumi_yaml_config_block_is_generated():
    text = (REPO / "Pulumi.yaml").read_text()
    assert text.endswith(pulumi_yaml_config()), "run: python -m infra config-docs --pulumi-yaml (and paste into Pulumi.yaml)"
    doc = yaml.safe_load(text)
    assert doc["name"] == "eks-ml-platform" and doc["runtime"]["name"] == "python"
    for key, decl in doc["config"].items():
        assert decl["type"] in {"string", "boolean", "integer", "array"} and decl["description"], key
        # every key has a default, except secrets and the keys whose default must stay in the code
        # (region: a project default would always win over aws:region)
        from infra.config_docs import NO_PROJECT_DEFAULT

        assert ("default" in decl) != (bool(decl.get("secret")) or key in NO_PROJECT_DEFAULT), key


def test_pulumi_yaml_defaults_match_the_model():
    doc = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    defaults = {k: v["default"] for k, v in doc["config"].items() if "default" in v}
    cfg = parse_config(defaults, stack="dev")
    assert cfg == parse_config({}, stack="dev")


def test_readme_config_table_is_current():
    text = README.read_text()
    assert render_readme(text) == text, "run: python -m infra.readme_sync"


def test_every_top_level_key_is_documented():
    from infra.config_docs import DESCRIPTIONS

    keys = [f.alias or n for n, f in PlatformConfig.model_fields.items() if n != "stack"]
    assert [k for k in keys if k not in DESCRIPTIONS] == []
    assert len(list(rows())) > len(keys)


def test_readme_states_the_current_dev_idle_cost():
    """The README's dev idle figure is what `python -m infra cost --stack dev` computes today."""
    from infra.cost.estimator import estimate
    from infra.config import load_stack_config

    est = estimate(load_stack_config("dev", REPO))
    row = f"| dev | ${est['idle_usd_per_hour']:.2f}/h | ~${est['idle_usd_per_hour'] * 730:,.0f} |"
    assert row in README.read_text(), f"update the README cost table: {row}"
