"""Rook-Ceph storage: the pure specs per environment, config errors, and the rendered stacks
(dependencies that make `pulumi destroy` follow Rook's teardown order, CRD validation)."""
from __future__ import annotations

import pytest

from components.storage.names import (BLOCK_POOL, CEPHFS_DRIVER, CSI_IMAGE_SET, EBS_STORAGE_CLASS, FILESYSTEM, FS_DATA_POOL,
                                      HOST_KEY, NAMESPACE, RBD_DRIVER, ZONE_KEY)
from components.storage.settings import StorageSettings
from components.storage.teardown import teardown_steps
from components.storage.values import (block_pool_spec, block_storage_class, ceph_cluster_spec, csi_driver_values,
                                       ebs_storage_class, file_storage_class, filesystem_spec, operator_values,
                                       snapshot_classes)
from infra.config import ConfigError, parse_config
from infra.check.crds import load_pinned_crds, schema_errors
from tests.conftest import by_name, manifests, states

pytestmark = pytest.mark.unit

RELEASE = "kubernetes:helm.sh/v3:Release"


def cfg_for(env: str, **raw):
    base = {"environment": env}
    if env == "prod":
        base["cluster"] = {"admins": [{"principalArn": "arn:aws:iam::123456789012:role/admin"}]}
    base.update(raw)
    return parse_config(base, stack=env)


# ------------------------------------------------------------------ pools and placement
@pytest.mark.parametrize("env,size,domain", [("prod", 3, "zone"), ("dev", 2, "host"), ("staging", 2, "host")])
def test_pool_layout_per_environment(env, size, domain):
    cfg = cfg_for(env)
    pool = block_pool_spec(StorageSettings.from_config(cfg))
    fs = filesystem_spec(StorageSettings.from_config(cfg))
    assert pool["failureDomain"] == domain and pool["replicated"] == {"size": size, "requireSafeReplicaSize": True}
    # the CephFilesystem's metadata and data pools carry exactly the block pool's replication
    for p in (fs["metadataPool"], fs["dataPools"][0]):
        assert p["failureDomain"] == pool["failureDomain"] and p["replicated"] == pool["replicated"]
    assert fs["dataPools"][0]["name"] == FS_DATA_POOL


def test_pool_settings_follow_config_overrides():
    cfg = cfg_for("dev", storage={"replicas": 3, "failureDomain": "zone", "osdCount": 3, "osdSizeGib": 200}, vpc={"azCount": 3})
    assert block_pool_spec(StorageSettings.from_config(cfg))["replicated"]["size"] == 3
    assert block_pool_spec(StorageSettings.from_config(cfg))["failureDomain"] == "zone"
    single = cfg_for("dev", storage={"replicas": 1})
    assert block_pool_spec(StorageSettings.from_config(single))["replicated"] == {"size": 1, "requireSafeReplicaSize": False}
    assert ceph_cluster_spec(StorageSettings.from_config(single))["cephConfig"] == {"global": {"mon_warn_on_pool_no_redundancy": "false"}}


def test_osds_on_encrypted_gp3_pvcs():
    cfg = cfg_for("prod", storage={"osdCount": 6, "osdSizeGib": 500})
    spec = ceph_cluster_spec(StorageSettings.from_config(cfg))
    sets = spec["storage"]["storageClassDeviceSets"]
    assert len(sets) == 1 and sets[0]["count"] == 6 and sets[0]["portable"] is True
    claim = sets[0]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == EBS_STORAGE_CLASS
    assert claim["spec"]["volumeMode"] == "Block" and claim["spec"]["resources"]["requests"]["storage"] == "500Gi"
    # prod spreads OSD prepare jobs (so the EBS volumes) across zones, hard
    spread = sets[0]["preparePlacement"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == ZONE_KEY and spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert spec["placement"]["mon"]["topologySpreadConstraints"][0]["topologyKey"] == ZONE_KEY
    ebs = ebs_storage_class(StorageSettings.from_config(cfg))
    assert ebs["provisioner"] == "ebs.csi.aws.com"
    assert ebs["parameters"]["type"] == "gp3" and ebs["parameters"]["encrypted"] == "true"
    assert ebs["volumeBindingMode"] == "WaitForFirstConsumer" and ebs["reclaimPolicy"] == "Retain"


def test_dev_spreads_by_host_and_keeps_mons_on_pvcs():
    spec = ceph_cluster_spec(StorageSettings.from_config(cfg_for("dev")))
    assert "mon" not in spec["placement"]
    prep = spec["storage"]["storageClassDeviceSets"][0]["preparePlacement"]["topologySpreadConstraints"][0]
    assert prep["topologyKey"] == HOST_KEY
    assert spec["mon"]["count"] == 3 and spec["mon"]["allowMultiplePerNode"] is False
    assert spec["mon"]["volumeClaimTemplate"]["spec"]["storageClassName"] == EBS_STORAGE_CLASS
    assert spec["mgr"]["count"] == 1 and ceph_cluster_spec(StorageSettings.from_config(cfg_for("prod")))["mgr"]["count"] == 2


def test_ceph_daemons_are_never_disrupted_by_karpenter():
    cfg = cfg_for("dev")
    spec = ceph_cluster_spec(StorageSettings.from_config(cfg))
    assert spec["annotations"]["all"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert filesystem_spec(StorageSettings.from_config(cfg))["metadataServer"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    terms = spec["placement"]["all"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}]
    # without Karpenter, the system node group (its label and its taint) is the only place
    no_karpenter = cfg_for("dev", addons={"karpenter": {"enabled": False}}, training={"enabled": False},
                           serving={"enabled": False}, cluster={"systemNodes": {"minSize": 3, "desiredSize": 3, "maxSize": 3}})
    placement = ceph_cluster_spec(StorageSettings.from_config(no_karpenter))["placement"]["all"]
    assert placement["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
    expr = placement["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert expr["matchExpressions"][0]["key"] == "eks-ml-platform/node-role"


def test_dashboard_and_prometheus_module_on():
    spec = ceph_cluster_spec(StorageSettings.from_config(cfg_for("dev")), prometheus_url="http://p:9090")
    assert spec["dashboard"] == {"enabled": True, "ssl": True, "prometheusEndpoint": "http://p:9090"}
    assert spec["monitoring"]["metricsDisabled"] is False
    assert spec["cephVersion"]["image"].startswith("quay.io/ceph/ceph:v20.")


# ------------------------------------------------------------------ storage classes and snapshots
@pytest.mark.parametrize("env,policy", [("prod", "Retain"), ("dev", "Delete"), ("staging", "Delete")])
def test_storage_classes(env, policy):
    cfg = cfg_for(env)
    blk, fs = block_storage_class(StorageSettings.from_config(cfg)), file_storage_class(StorageSettings.from_config(cfg))
    assert blk["metadata"]["name"] == "ceph-block" and fs["metadata"]["name"] == "ceph-filesystem"
    assert blk["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert "annotations" not in fs["metadata"]
    assert blk["provisioner"] == "rook-ceph.rbd.csi.ceph.com" and fs["provisioner"] == "rook-ceph.cephfs.csi.ceph.com"
    assert blk["parameters"]["pool"] == BLOCK_POOL
    assert fs["parameters"]["fsName"] == FILESYSTEM and fs["parameters"]["pool"] == "ceph-filesystem-data0"
    for sc in (blk, fs):
        assert sc["allowVolumeExpansion"] is True and sc["reclaimPolicy"] == policy
        assert sc["parameters"]["csi.storage.k8s.io/controller-expand-secret-namespace"] == "rook-ceph"
    snaps = {s["metadata"]["name"]: s for s in snapshot_classes(StorageSettings.from_config(cfg))}
    assert snaps["ceph-block-snapshot"]["driver"] == blk["provisioner"]
    assert snaps["ceph-filesystem-snapshot"]["driver"] == fs["provisioner"]
    assert {s["deletionPolicy"] for s in snaps.values()} == {policy}


def test_csi_drivers_values_match_rook_and_run_everywhere():
    cfg = cfg_for("prod")
    values = csi_driver_values(StorageSettings.from_config(cfg))
    assert values["operatorConfig"]["namespace"] == NAMESPACE
    assert values["operatorConfig"]["driverSpecDefaults"]["imageSet"] == {"name": CSI_IMAGE_SET}
    assert values["drivers"]["rbd"]["name"] == RBD_DRIVER and values["drivers"]["cephfs"]["name"] == CEPHFS_DRIVER
    assert values["drivers"]["nfs"]["enabled"] is False and values["drivers"]["nvmeof"]["enabled"] is False
    for scope in (values["operatorConfig"]["driverSpecDefaults"], values["drivers"]["rbd"], values["drivers"]["cephfs"]):
        # node plugins on every node (GPU and Neuron taints included); provisioners on the system nodes
        assert scope["nodePlugin"]["tolerations"] == [{"operator": "Exists"}]
        assert scope["controllerPlugin"]["tolerations"][0]["key"] == "CriticalAddonsOnly"
        assert scope["controllerPlugin"]["replicas"] == 2
    op = operator_values(StorageSettings.from_config(cfg))
    assert op["tolerations"][0]["key"] == "CriticalAddonsOnly" and op["nodeSelector"] == {"eks-ml-platform/node-role": "system"}
    assert op["ceph-csi-operator"]["controllerManager"]["tolerations"][0]["key"] == "CriticalAddonsOnly"


# ------------------------------------------------------------------ teardown
def test_cleanup_policy_only_when_destroying():
    assert "cleanupPolicy" not in ceph_cluster_spec(StorageSettings.from_config(cfg_for("dev")))
    cfg = cfg_for("dev", storage={"destroyData": True})
    policy = ceph_cluster_spec(StorageSettings.from_config(cfg))["cleanupPolicy"]
    assert policy["confirmation"] == "yes-really-destroy-data"
    assert policy["sanitizeDisks"]["method"] == "quick"
    assert filesystem_spec(StorageSettings.from_config(cfg))["preserveFilesystemOnDelete"] is False
    assert filesystem_spec(StorageSettings.from_config(cfg_for("prod")))["preserveFilesystemOnDelete"] is True
    steps = teardown_steps(cfg.stack)
    assert "storage.destroyData true" in steps[0] and steps[-1].startswith("pulumi destroy")


@pytest.mark.parametrize("raw,needle", [
    ({"storage": {"monCount": 2}}, "storage.monCount: 2 is not allowed; use 1, 3 or 5"),
    ({"storage": {"replicas": 3, "osdCount": 2}}, "storage: replicas 3 needs at least 3 OSDs; osdCount is 2"),
    ({"storage": {"failureDomain": "rack"}}, "storage.failureDomain: 'rack' is not allowed"),
    ({"storage": {"destroyData": "maybe"}}, "storage.destroyData"),
])
def test_bad_storage_config(raw, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack="dev")
    assert any(needle in p for p in exc.value.problems), exc.value.problems


# ------------------------------------------------------------------ rendered stacks
def _deps(result) -> dict[str, set[str]]:
    return {s["urn"]: set(s["dependencies"]) for s in states(result)}


def _urn(result, type_: str, name: str) -> str:
    return by_name(result, type_, name)["urn"]


def _reaches(deps: dict[str, set[str]], src: str, dst: str) -> bool:
    seen, todo = set(), [src]
    while todo:
        cur = todo.pop()
        if cur == dst:
            return True
        if cur not in seen:
            seen.add(cur)
            todo.extend(deps.get(cur, ()))
    return False


def test_rendered_charts_are_pinned(dev, prod):
    for result in (dev, prod):
        op = by_name(result, RELEASE, "ml-storage-operator")["inputs"]
        csi = by_name(result, RELEASE, "ml-storage-csi")["inputs"]
        assert (op["chart"], op["version"]) == ("rook-ceph", "v1.20.6")
        assert op["repositoryOpts"]["repo"] == "https://charts.rook.io/release"
        assert (csi["chart"], csi["version"]) == ("ceph-csi-drivers", "1.0.4")
        assert op["values"]["crds"] == {"enabled": True}


def test_destroy_follows_rooks_teardown_order(dev):
    """Pulumi deletes dependents first: every edge below is a 'deleted before' of the guide."""
    deps = _deps(dev)
    cr = "kubernetes:ceph.rook.io/v1:"
    operator = _urn(dev, RELEASE, "ml-storage-operator")
    csi = _urn(dev, RELEASE, "ml-storage-csi")
    cluster = _urn(dev, cr + "CephCluster", "ml-storage-cluster")
    pool = _urn(dev, cr + "CephBlockPool", "ml-storage-blockpool")
    fs = _urn(dev, cr + "CephFilesystem", "ml-storage-filesystem")
    block = _urn(dev, "kubernetes:storage.k8s.io/v1:StorageClass", "ml-storage-block")
    files = _urn(dev, "kubernetes:storage.k8s.io/v1:StorageClass", "ml-storage-filesystem")
    chain = [(block, pool), (files, fs), (pool, cluster), (fs, cluster), (cluster, csi), (cluster, operator),
             (csi, operator), (block, csi), (files, csi)]
    for later, earlier in chain:
        assert earlier in deps[later], f"{later.split('::')[-1]} must depend on {earlier.split('::')[-1]}"
    for snap in ("ml-storage-ceph-block-snapshot", "ml-storage-ceph-filesystem-snapshot"):
        urn = _urn(dev, "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", snap)
        assert csi in deps[urn] and _reaches(deps, urn, cluster)
    # consumers go before the storage: monitoring's volumes and the workloads' PVCs
    monitoring = _urn(dev, RELEASE, "ml-monitoring-release")
    assert block in deps[monitoring]
    for pvc in states(dev, "kubernetes:core/v1:PersistentVolumeClaim"):
        assert _reaches(deps, pvc["urn"], files) or _reaches(deps, pvc["urn"], block), pvc["urn"]


def test_stateful_storage_is_protected_in_prod(dev, prod):
    cr = "kubernetes:ceph.rook.io/v1:"
    for type_, name in ((cr + "CephCluster", "ml-storage-cluster"), (cr + "CephBlockPool", "ml-storage-blockpool"),
                        (cr + "CephFilesystem", "ml-storage-filesystem"), (RELEASE, "ml-storage-operator")):
        assert by_name(prod, type_, name)["protect"] is True
        assert by_name(dev, type_, name)["protect"] is False


def test_rendered_objects_validate_against_upstream_crds(dev, prod, staging):
    crds = load_pinned_crds()
    for result in (dev, prod, staging):
        objs = [m for m in manifests(result)
                if m["apiVersion"] in ("ceph.rook.io/v1", "snapshot.storage.k8s.io/v1")]
        kinds = sorted({m["kind"] for m in objs})
        assert kinds == ["CephBlockPool", "CephCluster", "CephFilesystem", "VolumeSnapshotClass"]
        for obj in objs:
            errors = list(schema_errors(obj, crds[(obj["apiVersion"], obj["kind"])]))
            assert not errors, (obj["kind"], obj["metadata"]["name"], errors)


def test_rendered_storage_classes_are_valid_and_labelled(dev, prod):
    import kubernetes_validate

    for result in (dev, prod):
        scs = {m["metadata"]["name"]: m for m in manifests(result, "StorageClass")}
        assert {"ceph-block", "ceph-filesystem", "ebs-gp3-encrypted"} <= set(scs)
        defaults = [n for n, m in scs.items()
                    if (m["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
        assert defaults == ["ceph-block"]
        for name in ("ceph-block", "ceph-filesystem", "ebs-gp3-encrypted"):
            kubernetes_validate.validate(scs[name], "1.34.0", strict=True)
            labels = scs[name]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "eks-ml-platform" and labels["app.kubernetes.io/managed-by"] == "pulumi"
        assert scs["ceph-block"]["reclaimPolicy"] == ("Retain" if result is prod else "Delete")


def test_destroy_data_renders_cleanup_policy_and_force_deletion(tmp_path):
    """`storage.destroyData: true` (the pre-destroy `pulumi up`) in the rendered objects."""
    import shutil

    import yaml

    from infra.preview.render import REPO, render

    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    doc["config"]["eks-ml-platform:storage"] = {**doc["config"].get("eks-ml-platform:storage", {}), "destroyData": True}
    (tmp_path / "Pulumi.teardown.yaml").write_text(yaml.safe_dump(doc))
    result = render("teardown", None, project_dir=tmp_path)
    cluster = [m for m in manifests(result, "CephCluster")][0]
    assert cluster["spec"]["cleanupPolicy"]["confirmation"] == "yes-really-destroy-data"
    pool = [m for m in manifests(result, "CephBlockPool")][0]
    assert pool["metadata"]["annotations"]["rook.io/force-deletion"] == "true"
    crds = load_pinned_crds()
    assert not list(schema_errors(cluster, crds[("ceph.rook.io/v1", "CephCluster")]))


def test_storage_classes_wait_for_ready_pools(dev):
    """The pool and the filesystem are awaited until Rook reports them Ready (pulumi.com/waitFor), so
    the StorageClasses and the PVCs behind them never race Ceph's bootstrap."""
    for kind in ("CephBlockPool", "CephFilesystem"):
        (obj,) = manifests(dev, kind)
        assert obj["metadata"]["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=Ready"
    assert "rook.io/force-deletion" not in manifests(dev, "CephBlockPool")[0]["metadata"]["annotations"]
