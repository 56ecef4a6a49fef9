"""The ``Kueue`` ComponentResource: the namespace, the chart, the queue objects and the metrics scrape."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.kueue.queues import queue_objects
from components.kueue.settings import KueueSettings
from components.kueue.values import (RELEASE_NAME, kueue_values, metrics_reader_binding, namespace_doc,
                                     network_policies, service_monitor)
from infra.config import CLUSTER_QUEUE, LOCAL_QUEUE
from infra.versions import CHARTS, chart_version

if TYPE_CHECKING:  # pragma: no cover - typing only (infra.platform imports this module at run time)
    from infra.context import PlatformContext


@dataclass(frozen=True)
class KueueArgs:
    """Inputs of the Kueue component."""

    settings: KueueSettings
    """The pools with a flavor, the share, borrowing, the waitForPodsReady timeout (``KueueSettings.from_config``)."""
    ctx: "PlatformContext"
    """Providers and the ``cluster_ready`` gate."""
    workloads_namespace: Optional[pulumi.Resource] = None
    """The shared ``ml-workloads`` Namespace (workloads/shared.py): the LocalQueue lives in it."""
    monitoring_release: Optional[pulumi.Resource] = None
    """kube-prometheus-stack's release (the ServiceMonitor CRD); None: no ServiceMonitor."""


def _suffix(doc: dict[str, Any]) -> str:
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}"


class _KueueObject(pulumi.CustomResource):
    """A Kueue custom resource registered with all of its top-level fields (``k8s.apiextensions.CustomResource``
    takes only ``spec``; a WorkloadPriorityClass has ``value`` and ``description`` at the top)."""

    def __init__(self, name: str, doc: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(f"kubernetes:{doc['apiVersion']}:{doc['kind']}", name, dict(doc), opts)


class Kueue(pulumi.ComponentResource):
    """See the package docstring. Outputs: ``release`` (the chart: CRDs, webhooks, controller), ``queue_objects``
    (flavors, priority classes, queues: the jobs are created after them), ``local_queue``, ``cluster_queue``."""

    def __init__(self, name: str, args: KueueArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("eks-ml-platform:kueue:Kueue", name, None, opts)
        ctx, st = args.ctx, args.settings

        def child(*deps: Optional[pulumi.Resource]) -> pulumi.ResourceOptions:
            return ctx.opts(self, depends_on=[d for d in deps if d is not None])

        ns = namespace_doc(st)
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=ns["metadata"], opts=child())
        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{doc['metadata']['name']}", metadata=doc["metadata"],
                                            spec=doc["spec"], opts=child(self.namespace))
            for doc in network_policies(st)]
        chart = CHARTS["kueue"]
        version = chart_version("kueue", st.version)
        # The chart installs the CRDs (templates/crd), the webhooks and the controller; Pulumi waits for the
        # Deployment, which reports ready once its webhook serves (the webhooks are failurePolicy Fail).
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, chart=chart.chart, version=version, namespace=st.namespace,
            create_namespace=False, skip_await=False, atomic=True, cleanup_on_fail=True, timeout=600,
            values=kueue_values(st), opts=child(self.namespace, *self.network_policies))

        self.queue_objects: list[pulumi.Resource] = []
        for doc in queue_objects(st):
            self.queue_objects.append(_KueueObject(f"{name}-{_suffix(doc)}", doc,
                                                   child(self.release, args.workloads_namespace)))

        self.service_monitor: Optional[pulumi.Resource] = None
        if args.monitoring_release is not None:
            rb = metrics_reader_binding()
            reader = k8s.rbac.v1.ClusterRoleBinding(f"{name}-metrics-reader", metadata=rb["metadata"],
                                                    role_ref=rb["roleRef"], subjects=rb["subjects"],
                                                    opts=child(self.release))
            sm = service_monitor(st)
            self.service_monitor = k8s.apiextensions.CustomResource(
                f"{name}-servicemonitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata=sm["metadata"], spec=sm["spec"], opts=child(args.monitoring_release, self.release, reader))

        self.local_queue = LOCAL_QUEUE
        self.cluster_queue = CLUSTER_QUEUE
        self.register_outputs({
            "namespace": st.namespace, "chartVersion": version, "release": self.release.status,
            "localQueue": f"{st.workloads_namespace}/{LOCAL_QUEUE}", "clusterQueue": CLUSTER_QUEUE,
            "flavors": [p.name for p in st.pools],
            "serviceMonitor": RELEASE_NAME if self.service_monitor is not None else None,
        })
