"""The training operator's RBAC, narrowed to what the enabled controllers use.

Upstream's ClusterRole (manifests/base/rbac/role.yaml at v1.9.4) is the union of every controller's
``+kubebuilder:rbac`` markers: all six job kinds, MPIJob's launcher RBAC (ServiceAccounts, Roles,
RoleBindings, ConfigMaps, pods/exec) and the cert rotator's Secrets, cluster-wide. What the
operator really uses, read from its source at that tag:

- each enabled job kind's controller: its ``kubeflow.org`` resource (and ``/status``, ``/finalizers``),
  Pods, Services, Events and the gang schedulers' PodGroups; PyTorchJob also HorizontalPodAutoscalers
  (elastic jobs);
- MPIJob only (not enabled here): ServiceAccounts, ConfigMaps, Roles, RoleBindings, pods/exec;
- the cert rotator (open-policy-agent/cert-controller v0.16): its own Secret through a cache scoped to
  the operator's namespace, and the ValidatingWebhookConfigurations (cluster-scoped) whose caBundle it
  injects.

So the ClusterRole keeps only the rules of the enabled kinds, without Secrets, and a Role in the
operator's namespace grants the Secrets verbs the rotator needs there.
"""
from __future__ import annotations

from typing import Any

from infra.conventions import checkov_annotations

#: rules only MPIJob's controller needs (the launcher's RBAC, its hostfile, kubectl exec)
MPI_ONLY = {("", "serviceaccounts"), ("", "configmaps"), ("", "pods/exec"),
            ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings")}
#: rules one kind's controller adds to the common ones
KIND_EXTRAS = {"PyTorchJob": {("autoscaling", "horizontalpodautoscalers")}}
ALL_EXTRAS = {pair for extra in KIND_EXTRAS.values() for pair in extra}
CERT_SECRETS = ("", "secrets")
SECRET_VERBS = ["get", "list", "update", "watch"]  # the rotator's marker: get;list;watch;update
ROLE_CHECKOV_SKIPS = {
    "CKV2_K8S_5": "the cert rotator's cache lists and watches the Secrets of the operator's own namespace, which "
                  "holds only its webhook cert; list/watch cannot be narrowed by resourceNames",
}


def _keep(group: str, resource: str, kinds: tuple[str, ...], plurals: set[str]) -> bool:
    if (group, resource) == CERT_SECRETS:
        return False  # namespaced: the Role below
    if group == "kubeflow.org":
        return resource.split("/")[0] in plurals
    if (group, resource) in MPI_ONLY:
        return "MPIJob" in kinds
    if (group, resource) in ALL_EXTRAS:
        return any((group, resource) in KIND_EXTRAS.get(k, set()) for k in kinds)
    return True


def narrow_cluster_role(role: dict[str, Any], kinds: tuple[str, ...], plurals: set[str]) -> dict[str, Any]:
    """Upstream's ClusterRole with only the rules the enabled controllers use (resources filtered per rule)."""
    rules = []
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", [""]):
            kept = [r for r in rule.get("resources", []) if _keep(group, r, kinds, plurals)]
            if kept:
                rules.append({**rule, "apiGroups": [group], "resources": kept})
    return {**role, "rules": rules}


def secrets_role(namespace: str, service_account: str, name: str) -> list[dict[str, Any]]:
    """The Role and RoleBinding that let the cert rotator manage its Secret in the operator's namespace."""
    meta = {"name": name, "namespace": namespace}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": list(SECRET_VERBS)}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {**meta, "annotations": checkov_annotations(ROLE_CHECKOV_SKIPS)},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]},
    ]
