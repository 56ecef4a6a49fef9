"""The platform's Pulumi policy pack: ``pulumi preview --policy-pack policy``.

A thin wrapper: every rule lives in ``policy/rules.py`` and ``policy/manifest_rules.py`` (pure
functions, tested offline and run by ``python -m infra check`` on the rendered preview). This file builds one mandatory
ResourceValidationPolicy per rule id in ``rules.RULES``.

Never import this module from tests: constructing ``PolicyPack`` starts the analyzer's gRPC
server and blocks.

Config (``pulumi preview --policy-pack policy --policy-pack-config config.json``)::

    {"no-public-load-balancer": {"allowPublicLoadBalancers": true}}

Note on ``grafana-password-not-plaintext``: the analyzer receives Pulumi secrets already
unwrapped, so here any ``adminPassword`` in the Grafana values is reported; give Grafana its
password through ``admin.existingSecret`` (a Kubernetes Secret built from a Pulumi secret). The
offline check on preview.json, where secrets print as ``[secret]``, accepts a secret value.
"""

from __future__ import annotations

import os
import sys

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

# The Pulumi CLI runs this file from inside policy/. The rules import ``policy.*`` and
# ``infra.conventions`` (a leaf module: the standard library only), so the repository root goes on
# the path; an ImportError is a bug and propagates.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from policy import rules  # noqa: E402

ALLOW_PUBLIC_KEY = "allowPublicLoadBalancers"


def _validator(rule_id: str):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        allow_public = bool((args.get_config() or {}).get(ALLOW_PUBLIC_KEY, False))
        for finding in rules.analyzer_findings(rule_id, args.resource_type, args.props, args.name,
                                               allow_public_lb=allow_public):
            report_violation(f"{finding.resource}: {finding.message}", args.urn)

    return validate


def _policy(rule_id: str, description: str) -> ResourceValidationPolicy:
    schema = None
    if rule_id == "no-public-load-balancer":
        schema = PolicyConfigSchema(properties={
            ALLOW_PUBLIC_KEY: {"type": "boolean", "default": False,
                               "description": "Allow internet-facing load balancers."},
        })
    return ResourceValidationPolicy(
        name=rule_id,
        description=description,
        validate=_validator(rule_id),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema,
    )


PolicyPack(
    name="eks-ml-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_policy(rule_id, description) for rule_id, description in rules.RULES.items()],
)
