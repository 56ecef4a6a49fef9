"""The one mock harness of the offline preview and the tests (shared by both).

``PlatformMocks`` returns realistic outputs for the resources and invokes the program uses:
ids in AWS's formats, ARNs with a fixed account, the camelCase outputs of the multi-language
``eks:index:Cluster`` component, and an EKS kubeconfig. Every value is derived from the
resource's type and name, so two renders are byte-identical.

``RecordingMonitor`` is the engine's view of the program: it records every RegisterResource
request (parent, dependencies, provider, protect, inputs with secrets still marked), which
``infra.preview.render`` turns into a ``pulumi preview --json`` shaped document.

:func:`mock_engine` runs code (the program, or a component alone in a test) under both: a fresh
runtime and event loop, the mocks installed, the stack's config set, and every outstanding RPC
awaited when the block ends. Tooling only: the program never imports this module.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor

from infra.conventions import PULUMI_SECRET_SIG, PULUMI_SIG_KEY

ACCOUNT = "123456789012"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a8"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_TEXT = "[secret]"


def _h(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


# AWS id prefixes by type token
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-", "aws:ec2/subnet:Subnet": "subnet-", "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/eip:Eip": "eipalloc-", "aws:ec2/natGateway:NatGateway": "nat-", "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-", "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
}


@dataclass
class PlatformMocks(pulumi.runtime.Mocks):
    region: str = "us-west-2"
    cluster_name: str = "ml-dev"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        if typ == "eks:index:Cluster":
            return f"{name}-id", self._eks_cluster(inputs)
        if not args.custom:
            return "", {}
        rid = _ID_PREFIX[typ] + _h(typ, name) if typ in _ID_PREFIX else f"{name}-{_h(typ, name, n=8)}"
        state = dict(inputs)
        module = typ.split(":")[1].split("/")[0] if typ.count(":") >= 2 else ""
        if typ.startswith("aws:"):
            if inputs.get("name"):
                res_name = inputs["name"]
            elif inputs.get("namePrefix"):
                res_name = inputs["namePrefix"] + _h(typ, name, n=8)
            else:  # Pulumi auto-naming: the logical name plus a random suffix
                res_name = f"{name}-{_h(typ, name, n=7)}"
            state.setdefault("name", res_name)
            state.setdefault("arn", self._arn(typ, module, res_name, rid))
            state.setdefault("tagsAll", inputs.get("tags", {}))
        if typ == "aws:kms/key:Key":
            key_id = f"{_h(typ, name, n=8)}-{_h(name, n=4)}-{_h(name, 'a', n=4)}-{_h(name, 'b', n=4)}-{_h(name, 'c', n=12)}"
            rid = key_id
            state.update(keyId=key_id, arn=f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key_id}")
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{state['name']}"
            state["uniqueId"] = "AROA" + _h(typ, name, n=17).upper()
            rid = state["name"]
        elif typ == "aws:iam/policy:Policy":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:policy/{state['name']}"
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state.update(latestVersion=1, defaultVersion=1)
        elif typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{state['name']}"
            state["arn"] = f"arn:aws:sqs:{self.region}:{ACCOUNT}:{state['name']}"
            rid = state["url"]
        elif typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{state['name']}"
            state["registryId"] = ACCOUNT
            state["arn"] = f"arn:aws:ecr:{self.region}:{ACCOUNT}:repository/{state['name']}"
            rid = state["name"]
        elif typ == "aws:ecr/lifecyclePolicy:LifecyclePolicy":
            state["registryId"] = ACCOUNT
        elif typ == "aws:eks/addon:Addon":
            state.setdefault("addonVersion", "v0.0.0-eksbuild.1")
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            state["status"] = "ACTIVE"
        elif typ == "aws:ec2/subnet:Subnet":
            state.setdefault("availabilityZone", f"{self.region}a")
        elif typ.startswith("random:"):
            state["result"] = "mock-" + _h(typ, name, n=24)
        elif typ == "docker-build:index:Image":
            # a build's digest: deterministic from the resource and what it is tagged as (a new content hash
            # in the tag gives a new digest, as a real rebuild would)
            tags = [str(t) for t in inputs.get("tags") or []]
            state["digest"] = "sha256:" + hashlib.sha256(json.dumps([name, tags]).encode()).hexdigest()
            state["ref"] = f"{tags[0]}@{state['digest']}" if tags else state["digest"]
            rid = state["digest"]
        elif typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {"name": inputs.get("name", name), "namespace": inputs.get("namespace", "default"),
                               "chart": inputs.get("chart"), "version": inputs.get("version"), "status": "deployed"}
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list] | dict:
        tok = args.token
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": [f"usw2-az{i + 1}" for i in range(3)], "id": self.region}
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/preview", "userId": "AIDAPREVIEW", "id": ACCOUNT}
        if tok == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        if tok in ("aws:index/getRegion:getRegion", "aws:index/region:getRegion"):
            return {"name": self.region, "region": self.region, "id": self.region, "endpoint": f"ec2.{self.region}.amazonaws.com"}
        if tok == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = (args.args or {}).get("registryId") or ACCOUNT
            password = "mock-ecr-password-" + _h("ecr", registry, n=24)
            return {"userName": "AWS", "password": password, "id": self.region,
                    "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                    "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
                    "expiresAt": "2026-01-01T12:00:00Z", "registryId": registry}
        return {}

    def outputs_of(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """What the mocks answer for one custom resource (e.g. a generated secret or an image digest)."""
        _, state = self.new_resource(pulumi.runtime.MockResourceArgs(typ=typ, name=name, inputs=inputs, custom=True))
        return state

    # ------------------------------------------------------------------ helpers
    def _arn(self, typ: str, module: str, res_name: str, rid: str) -> str:
        if module == "iam":
            return f"arn:aws:iam::{ACCOUNT}:{typ.split(':')[-1].lower()}/{res_name}"
        return f"arn:aws:{module}:{self.region}:{ACCOUNT}:{typ.split(':')[-1].lower()}/{rid}"

    def _eks_cluster(self, inputs: dict) -> dict:
        name = inputs.get("name") or self.cluster_name
        oidc_id = _h("oidc", name, n=32).upper()
        issuer = f"https://oidc.eks.{self.region}.amazonaws.com/id/{oidc_id}"
        endpoint = f"https://{_h('endpoint', name, n=32).upper()}.gr7.{self.region}.eks.amazonaws.com"
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "aws",
            "clusters": [{"name": "kubernetes", "cluster": {"server": endpoint, "certificate-authority-data": "TU9DSy1DQQ=="}}],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "users": [{"name": "aws", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                       "command": "aws", "args": ["eks", "get-token", "--cluster-name", name, "--output", "json"]}}}],
        }
        # Multi-language components answer in camelCase; the SDK maps them to snake_case attributes.
        return {
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig, sort_keys=True),
            "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.removeprefix('https://')}",
            "oidcProviderUrl": issuer,
            "oidcIssuer": issuer.removeprefix("https://"),
            "clusterSecurityGroupId": "sg-" + _h("cluster-sg", name),
            "nodeSecurityGroupId": "sg-" + _h("node-sg", name),
            "clusterIngressRuleId": "sgrule-" + _h("ingress", name, n=10),
        }


# ---------------------------------------------------------------------- recording
def plain(value: Any) -> Any:
    """A Struct-decoded value as JSON: secrets as "[secret]", resource refs as their URN, unknowns marked."""
    if isinstance(value, dict):
        sig = value.get(PULUMI_SIG_KEY)
        if sig == PULUMI_SECRET_SIG:
            return SECRET_TEXT
        if sig == RESOURCE_SIG:
            return value.get("urn")
        if sig == OUTPUT_SIG:
            return SECRET_TEXT if value.get("secret") else plain(value.get("value"))
        if sig in (ASSET_SIG, ARCHIVE_SIG):
            return {k: v for k, v in value.items() if k != PULUMI_SIG_KEY}
        return {k: plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        return "[unknown]"
    return value


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    protect: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any] = field(default_factory=dict)
    #: the URNs (or alias specs) this resource was known by before: ``pulumi up`` moves, never replaces
    aliases: list[str] = field(default_factory=list)


def _alias_text(alias: Any) -> str:
    """An alias the program asked for: its URN, or ``name=..,type=..,parent=..`` of a spec that renames or
    reparents. The type-only specs the Kubernetes SDK adds to every object (older API versions) are left out."""
    if alias.urn:
        return alias.urn
    spec = alias.spec
    if not (spec.name or spec.parentUrn or spec.noParent):
        return ""
    return ",".join(f"{k}={v}" for k, v in (("name", spec.name), ("type", spec.type),
                                             ("parent", spec.parentUrn or ("(none)" if spec.noParent else ""))) if v)


class RecordingMonitor(MockMonitor):
    """A MockMonitor that keeps every registration request, as the engine would see it."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """As the engine does: the full parent type chain, with the root Stack left out."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        urn = response.urn
        raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
        prop_deps = {k: sorted(v.urns) for k, v in request.propertyDependencies.items()}
        deps = set(request.dependencies)
        for urns in prop_deps.values():
            deps.update(urns)
        reg = Registration(
            urn=urn, type=request.type, name=request.name, custom=bool(request.custom), parent=request.parent,
            provider=request.provider, protect=bool(request.protect), dependencies=sorted(deps),
            property_dependencies=prop_deps, inputs=plain(raw),
            aliases=[a for a in (_alias_text(x) for x in request.aliases) if a],
        )
        with self._lock:
            self.registrations.append(reg)
        return response


# ---------------------------------------------------------------------- the harness
def reset_runtime() -> None:
    """Let one process run the program several times (tests): forget the previous root stack and settings."""
    from pulumi.runtime import settings

    settings.reset_options()  # also clears the root stack resource


@contextmanager
def mock_engine(*, project: str, stack: str, region: str = "us-west-2", cluster_name: str = "ml-dev",
                config: dict[str, str] | None = None, secret_keys: list[str] | None = None) -> Iterator[RecordingMonitor]:
    """Run the block's Pulumi code under :class:`PlatformMocks`, recorded by a :class:`RecordingMonitor`.

    Yields the monitor. ``config`` (engine form: strings, structured values as JSON) replaces the
    runtime's config when given. When the block ends normally every outstanding RPC is awaited, so
    ``monitor.registrations`` is complete; an exception in the block propagates without waiting.
    """
    reset_runtime()
    monitor = RecordingMonitor(PlatformMocks(region=region, cluster_name=cluster_name))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=True, monitor=monitor)
        if config is not None:
            from pulumi.runtime.config import set_all_config

            set_all_config(config, secret_keys or [])
        yield monitor
        loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
