"""The ``Platform`` component: network, then the cluster, then the add-ons in parallel.

Each add-on gets the Kubernetes provider and ``depends_on`` only what it needs (the
``cluster_ready`` gate, and the release that installs the CRDs it uses).
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.cluster import EksCluster
from infra.config import PlatformConfig
from infra.context import PlatformContext
from infra.network import Network


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-ml-platform:platform:Platform", name, None, opts)
        self.cfg = cfg
        self.aws_provider = aws.Provider(
            f"{name}-aws", region=cfg.region, default_tags={"tags": cfg.common_tags},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws_opts = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})
        self.network = Network(f"{name}-net", cfg, opts=aws_opts)
        self.cluster = EksCluster(
            f"{name}-cluster", cfg, vpc_id=self.network.vpc_id, private_subnet_ids=self.network.private_subnet_ids,
            public_subnet_ids=self.network.public_subnet_ids, opts=aws_opts,
        )
        self.ctx = PlatformContext(
            cfg=cfg, cluster=self.cluster.outputs, cluster_ready=self.cluster.cluster_ready,
            aws_provider=self.aws_provider, k8s_provider=self.cluster.provider,
            private_subnet_ids=self.network.private_subnet_ids, vpc_id=self.network.vpc_id,
        )
        # Add-ons install in parallel after the cluster; each depends only on what it needs.
        # Later blocks may look up earlier ones in self.addons (e.g. a ServiceMonitor needs the
        # monitoring release that installs its CRD).
        self.addons: dict[str, pulumi.ComponentResource] = {}
        # >>> storage + monitoring (components/storage.py, components/monitoring.py)
        from components.monitoring import PROMETHEUS_URL, Monitoring, MonitoringArgs
        from components.storage import RookCeph, StorageArgs

        # Rook-Ceph first: monitoring keeps its volumes on ceph-block, so it depends on the StorageClasses.
        if cfg.addons.rook_ceph.enabled:
            self.addons["storage"] = RookCeph(
                f"{name}-storage",
                StorageArgs(ctx=self.ctx, prometheus_url=PROMETHEUS_URL if cfg.addons.monitoring.enabled else None),
                opts=self.ctx.opts(self),
            )
        if cfg.addons.monitoring.enabled:
            storage_addon = self.addons.get("storage")
            self.addons["monitoring"] = Monitoring(
                f"{name}-monitoring", MonitoringArgs(ctx=self.ctx, storage=storage_addon),
                opts=self.ctx.opts(self, depends_on=[storage_addon] if storage_addon is not None else None),
            )
        # <<< storage + monitoring
        # >>> karpenter + accelerators (components/karpenter.py, components/accelerators.py)
        from components.accelerators import Accelerators, AcceleratorsArgs
        from components.karpenter import Karpenter, KarpenterArgs
        from components.priority import PriorityClasses

        # ServiceMonitors only once kube-prometheus-stack (their CRD) is part of the stack.
        monitoring_release = getattr(self.addons.get("monitoring"), "release", None)
        self.addons["priority"] = PriorityClasses(f"{name}-priority", ready=self.ctx.cluster_ready,
                                                  opts=self.ctx.opts(self))
        if cfg.addons.karpenter.enabled:
            self.addons["karpenter"] = Karpenter(
                f"{name}-karpenter", KarpenterArgs(ctx=self.ctx, monitoring_release=monitoring_release),
                opts=self.ctx.opts(self),
            )
            # Device plugins target the accelerator labels of the Karpenter pools: in parallel with
            # Karpenter (a DaemonSet with no matching node is ready at once), not after it.
            self.addons["accelerators"] = Accelerators(
                f"{name}-accelerators", AcceleratorsArgs(ctx=self.ctx, monitoring_release=monitoring_release),
                opts=self.ctx.opts(self),
            )
        # <<< karpenter + accelerators
        # >>> training operator + training workload (components/training_operator.py, workloads/training/component.py)
        if cfg.addons.training_operator.enabled:
            from components.training_operator import OperatorSettings, TrainingOperator, TrainingOperatorArgs

            self.addons["training_operator"] = TrainingOperator(
                f"{name}-training-operator",
                TrainingOperatorArgs(settings=OperatorSettings.from_config(cfg), protect_crds=cfg.protect),
                opts=self.ctx.opts(self),
            )
        # >>> workload images (components/images.py): ECR repositories + builds, or the images.* references.
        # Only the AWS provider: nothing here waits for the cluster, so the builds run while it comes up.
        self.images = None
        if cfg.training.enabled or cfg.serving.enabled:
            from components.images import ImagesSettings, WorkloadImages, WorkloadImagesArgs

            self.images = WorkloadImages(f"{name}-images", WorkloadImagesArgs(settings=ImagesSettings.from_config(cfg)),
                                         opts=aws_opts)
        # <<< workload images
        if cfg.training.enabled or cfg.serving.enabled:
            from workloads.shared import WorkloadStorage, WorkloadStorageArgs

            # The PVCs bind once the storage add-on's CephFS StorageClass (ceph-filesystem) exists.
            storage = self.addons.get("storage")
            fs_class = getattr(storage, "file_storage_class", None)
            storage_deps = [fs_class] if fs_class is not None else ([storage] if storage is not None else [])
            self.addons["workload_storage"] = WorkloadStorage(
                f"{name}-workload-storage",
                WorkloadStorageArgs(datasets_size_gib=cfg.training.datasets_size_gib,
                                    models_size_gib=cfg.training.models_size_gib, protect=cfg.protect,
                                    storage_dependencies=tuple(storage_deps)),
                opts=self.ctx.opts(self),
            )
        if cfg.training.enabled:
            from workloads.training.component import PRIORITY_CLASS, TrainingWorkload, TrainingWorkloadArgs

            ws = self.addons["workload_storage"]
            operator = self.addons.get("training_operator")
            # the ml-training PriorityClass (components/priority.py), when its component exposes it
            priority = [c for a in self.addons.values() for n, c in (getattr(a, "classes", None) or {}).items()
                        if n == PRIORITY_CLASS]
            self.addons["training"] = TrainingWorkload(
                f"{name}-training",
                TrainingWorkloadArgs(ctx=self.ctx, namespace=ws.namespace, datasets_pvc=ws.datasets_pvc,
                                     models_pvc=ws.models_pvc,
                                     operator_ready=tuple(getattr(operator, "ready", ())),
                                     priority_classes=tuple(priority), images=self.images),
                opts=self.ctx.opts(self, depends_on=[ws, *priority, self.images]),
            )
        # <<< training operator + training workload
        # >>> load balancer controller (components/load_balancer.py)
        if cfg.addons.load_balancer_controller.enabled:
            from components.load_balancer import LoadBalancerController, LoadBalancerControllerArgs

            # Runs on the system nodes: needs only the cluster gate (and monitoring's CRD for its ServiceMonitor).
            # The serving Ingress/Service depend on it, so a destroy deletes them (and their ALB/NLB) first.
            self.addons["load_balancer"] = LoadBalancerController(
                f"{name}-load-balancer",
                LoadBalancerControllerArgs(ctx=self.ctx,
                                           monitoring_release=getattr(self.addons.get("monitoring"), "release", None)),
                opts=self.ctx.opts(self),
            )
        # <<< load balancer controller
        # >>> sentiment serving (workloads/sentiment/component.py)
        if cfg.serving.enabled:
            from workloads.sentiment.component import PRIORITY_CLASS, SentimentServing, SentimentServingArgs

            # The shared ml-workloads namespace and the models PVC come from workloads/shared.py; the pods
            # need the ml-serving PriorityClass to be admitted. After Karpenter, so that a destroy removes
            # the serving pods before the controller that owns their nodes.
            storage = self.addons.get("workload_storage")
            serving_class = (getattr(self.addons.get("priority"), "classes", None) or {}).get(PRIORITY_CLASS)
            serving_deps = [d for d in (storage, serving_class, self.addons.get("karpenter"), self.images,
                                        getattr(self.addons.get("load_balancer"), "release", None)) if d is not None]
            self.addons["serving"] = SentimentServing(
                f"{name}-sentiment",
                SentimentServingArgs(ctx=self.ctx, namespace=getattr(storage, "namespace", None),
                                     models_pvc=getattr(storage, "models_pvc", None), priority_class=serving_class,
                                     images=self.images),
                opts=self.ctx.opts(self, depends_on=serving_deps),
            )
        # <<< sentiment serving
        self.outputs = {
            "clusterName": self.cluster.outputs.name,
            "clusterEndpoint": self.cluster.outputs.endpoint,
            "oidcProviderArn": self.cluster.outputs.oidc_provider_arn,
            "kubeconfig": self.cluster.outputs.kubeconfig,
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
        }
        if self.images is not None:
            for key, ref in sorted(self.images.refs.items()):  # the workload images, by digest when built
                self.outputs[f"image{key[0].upper()}{key[1:]}"] = ref
        if "serving" in self.addons:
            self.outputs["servingEndpoint"] = self.addons["serving"].endpoint  # in-cluster URL of POST /analyze
        if "monitoring" in self.addons:
            self.outputs["grafanaAdminPassword"] = pulumi.Output.secret(self.addons["monitoring"].grafana_admin_password)
        self.register_outputs(self.outputs)
