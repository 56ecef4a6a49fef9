"""The platform's Prometheus alerts, as one ``monitoring.coreos.com/v1`` PrometheusRule spec.

Pure data (no Pulumi): ``components/monitoring.py`` creates the PrometheusRule from
``platform_rules(s)``, and the tests check every expression's metric names against the lists
each exporter's config keeps (``tests/components/test_dashboards.py``).

Label conventions the expressions rely on:
- DCGM exporter: ``Hostname`` (the node) on every ``DCGM_FI_*`` series;
- the sentiment server is scraped with ``honorLabels: true``, so its own ``endpoint`` label (the
  HTTP path) survives instead of becoming ``exported_endpoint``;
- kube-state-metrics exports the ``training.kubeflow.org/job-name`` pod label
  (``metricLabelsAllowlist`` in components/monitoring.py) as ``label_training_kubeflow_org_job_name``.
"""
from __future__ import annotations

from typing import Any

from components.monitoring_settings import MonitoringSettings
from infra.config import CLUSTER_QUEUE
from infra.conventions import WORKLOADS_NAMESPACE

SERVING_NAMESPACE = TRAINING_NAMESPACE = WORKLOADS_NAMESPACE
CEPH_CAPACITY_WARN = 0.80
KARPENTER_POOL_LIMIT_WARN = 0.90


def _rule(alert: str, expr: str, *, for_: str, severity: str, summary: str, description: str,
          runbook: str = "") -> dict[str, Any]:
    annotations = {"summary": summary, "description": description}
    if runbook:
        annotations["runbook"] = runbook
    return {"alert": alert, "expr": expr, "for": for_, "labels": {"severity": severity, "platform": "eks-ml-platform"},
            "annotations": annotations}


def gpu_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    minutes = s.monitoring.gpu_idle_minutes
    return [
        _rule("GpuNodeIdle",
              "max by (Hostname) (DCGM_FI_DEV_GPU_UTIL) < 1",
              for_=f"{minutes}m", severity="warning",
              summary="GPU node {{ $labels.Hostname }} has been idle for more than %d minutes" % minutes,
              description="No GPU on {{ $labels.Hostname }} went above 1%% utilisation for %d minutes. A pod is "
                          "holding the node (Karpenter only consolidates empty GPU nodes): check for a stuck "
                          "or finished job that did not exit." % minutes),
    ]


def gpu_health_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    """XID and double-bit ECC errors from DCGM (``DCGM_FI_DEV_XID_ERRORS``, ``DCGM_FI_DEV_ECC_DBE_VOL_TOTAL``).

    The EKS node monitoring agent reads the same faults from the driver and sets
    ``AcceleratedHardwareReady=False``; Karpenter's node repair replaces the node 10 minutes later.
    These alerts tell a person why the node went, and which job lost its GPU.
    """
    repair = ("The EKS node monitoring agent marks the node AcceleratedHardwareReady=False and Karpenter's "
              "node repair replaces it after 10 minutes (unless over 20% of the pool's nodes are unhealthy); "
              "training resumes from its last checkpoint.")
    return [
        _rule("GpuXidError",
              "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
              for_="1m", severity="warning",
              summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
              description="The NVIDIA driver reported XID {{ $value }}. 13/31/43 are usually the application's "
                          "fault; 48 (double-bit ECC), 63/64 (row remapping), 74 (NVLink), 79 (fallen off the bus), "
                          "94/95 (contained/uncontained ECC) and 119/120 (GSP) mean a failing GPU. " + repair),
        _rule("GpuEccDoubleBitErrors",
              "max by (Hostname, gpu) (DCGM_FI_DEV_ECC_DBE_VOL_TOTAL) > 0",
              for_="1m", severity="critical",
              summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has uncorrectable (double-bit) ECC errors",
              description="{{ $value }} double-bit ECC errors since the driver loaded: results computed on this GPU "
                          "may be wrong. " + repair),
    ]


def ceph_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    pct = int(CEPH_CAPACITY_WARN * 100)
    return [
        _rule("CephHealthWarning", "ceph_health_status == 1", for_="15m", severity="warning",
              summary="Ceph is in HEALTH_WARN",
              description="The Ceph cluster has reported HEALTH_WARN for 15 minutes; run `ceph health detail` "
                          "in the rook-ceph toolbox or open the Ceph dashboard."),
        _rule("CephHealthError", "ceph_health_status == 2", for_="5m", severity="critical",
              summary="Ceph is in HEALTH_ERR",
              description="The Ceph cluster has reported HEALTH_ERR for 5 minutes: I/O may be blocked."),
        _rule("CephClusterCapacityHigh",
              f"ceph_cluster_total_used_raw_bytes / ceph_cluster_total_bytes > {CEPH_CAPACITY_WARN}",
              for_="10m", severity="warning",
              summary=f"Ceph raw capacity is above {pct}%",
              description="{{ $value | humanizePercentage }} of the cluster's raw capacity is used. Ceph stops "
                          "writes at 95% (full ratio): raise storage.osdCount or storage.osdSizeGib."),
        _rule("CephPoolCapacityHigh",
              "(ceph_pool_stored / (ceph_pool_stored + ceph_pool_max_avail)) * on (pool_id) group_left (name) "
              f"ceph_pool_metadata > {CEPH_CAPACITY_WARN}",
              for_="10m", severity="warning",
              summary="Ceph pool {{ $labels.name }} is above %d%% full" % pct,
              description="Pool {{ $labels.name }} has used {{ $value | humanizePercentage }} of what it can store."),
    ]


def serving_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    target_ms = s.monitoring.serving_p99_target_ms
    target_s = target_ms / 1000
    # How long pods may serve different model versions (monitoring.modelVersionSkewMinutes, default 15): a
    # switch takes MODEL_WATCH_INTERVAL_S (5 s) plus a load and warm-up (seconds to a minute on CPU).
    skew = f"{s.monitoring.model_version_skew_minutes}m"
    return [
        _rule("SentimentP99LatencyHigh",
              "histogram_quantile(0.99, sum by (le) (rate(sentiment_request_duration_seconds_bucket"
              f'{{namespace="{SERVING_NAMESPACE}", endpoint="/analyze"}}[5m]))) > {target_s:g}',
              for_="10m", severity="warning",
              summary=f"Sentiment p99 latency is above its {target_ms} ms target",
              description="The 99th percentile of POST /analyze latency has been {{ $value | humanizeDuration }} "
                          f"for 10 minutes (target {target_ms} ms, monitoring.servingP99TargetMs). Check the "
                          "batch size and queue depth panels, then the HPA."),
        # Every pod follows the same `latest` (or the same pin): they agree within a watch interval plus a load,
        # so a longer disagreement is a version that failed to load somewhere, or a rollout stuck halfway.
        _rule("SentimentModelVersionSkew",
              f'count(count by (version) (sentiment_model_info{{namespace="{SERVING_NAMESPACE}"}} == 1)) > 1',
              for_=skew, severity="warning",
              summary="Sentiment pods serve different model versions",
              description="{{ $value }} model versions have been served at once for "
                          f"{skew} (monitoring.modelVersionSkewMinutes). Check /readyz switch_error on the pods still on the old "
                          "version (a version that fails to load is not retried until `latest` is written "
                          "again) and the Served model version panel."),
    ]


def training_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    return [
        _rule("TrainingPodRestarting",
              "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total"
              f'{{namespace="{TRAINING_NAMESPACE}"}}[15m])) '
              "* on (namespace, pod) group_left (label_training_kubeflow_org_job_name) "
              "max by (namespace, pod, label_training_kubeflow_org_job_name) "
              f'(kube_pod_labels{{namespace="{TRAINING_NAMESPACE}", label_training_kubeflow_org_job_name!=""}}) > 0',
              for_="5m", severity="warning",
              summary="Training job {{ $labels.label_training_kubeflow_org_job_name }}: pod {{ $labels.pod }} is restarting",
              description="A container of the training job restarted {{ $value }} times in 15 minutes "
                          "(OOM, NCCL/gloo failure or a failing checkpoint volume). The trainer resumes from "
                          "its last checkpoint, but repeated restarts lose the epoch in progress."),
        _rule("TrainingJobRestarted",
              "sum by (job_namespace) (increase(training_operator_jobs_restarted_total[30m])) > 0",
              for_="1m", severity="info",
              summary="The training operator restarted a job",
              description="The Kubeflow training operator restarted {{ $value }} job(s) in namespace "
                          "{{ $labels.job_namespace }} in the last 30 minutes."),
    ]


def karpenter_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    pct = int(KARPENTER_POOL_LIMIT_WARN * 100)
    return [
        _rule("KarpenterNodeLaunchFailing",
              'sum by (error) (increase(karpenter_cloudprovider_errors_total{method="Create"}[15m])) > 0',
              for_="10m", severity="warning",
              summary="Karpenter is failing to launch nodes ({{ $labels.error }})",
              description="EC2 launches have failed for 15 minutes ({{ $labels.error }}); pending pods wait. "
                          "InsufficientCapacityError: widen the pool's instance families or zones; other errors: "
                          "check the Karpenter controller's logs and IAM."),
        _rule("KarpenterNodePoolNearLimit",
              "karpenter_nodepools_usage / on (nodepool, resource_type) karpenter_nodepools_limit "
              f"> {KARPENTER_POOL_LIMIT_WARN}",
              for_="15m", severity="warning",
              summary="NodePool {{ $labels.nodepool }} is at %d%% of its {{ $labels.resource_type }} limit" % pct,
              description="Karpenter launches nothing past a NodePool's limits: new pods of this pool will "
                          "stay pending. Raise nodePools[].limits if this is expected load."),
    ]


def kueue_rules(s: MonitoringSettings) -> list[dict[str, Any]]:
    """The training queue (Kueue's own metrics, components/kueue): workloads waiting too long for quota."""
    minutes = s.queue_max_wait_minutes
    return [
        _rule("TrainingQueueWaitingTooLong",
              f'sum by (cluster_queue) (kueue_pending_workloads{{cluster_queue="{CLUSTER_QUEUE}"}}) > 0',
              for_=f"{minutes}m", severity="warning",
              summary="Training jobs have waited in ClusterQueue {{ $labels.cluster_queue }} for more than %d minutes"
                      % minutes,
              description="{{ $value }} workload(s) have been pending for %d minutes (training.queue.maxWaitMinutes): "
                          "the queue's quota (the node pools' limits times training.queue.share) is in use, or a job "
                          "asks for more than a pool may launch. `kubectl get workloads -n %s` shows why; raise "
                          "nodePools[].limits or training.queue.share." % (minutes, TRAINING_NAMESPACE)),
    ]


def platform_rules(s: MonitoringSettings) -> dict[str, Any]:
    """The PrometheusRule spec: one group per area."""
    groups = [
        ("eks-ml-platform.gpu", gpu_rules(s)),
        ("eks-ml-platform.gpu-health", gpu_health_rules(s)),
        ("eks-ml-platform.ceph", ceph_rules(s) if s.rook_ceph else []),
        ("eks-ml-platform.serving", serving_rules(s)),
        ("eks-ml-platform.training", training_rules(s)),
        ("eks-ml-platform.karpenter", karpenter_rules(s) if s.karpenter else []),
        ("eks-ml-platform.queue", kueue_rules(s) if s.kueue else []),
    ]
    return {"groups": [{"name": n, "rules": rules} for n, rules in groups if rules]}


def all_exprs(spec: dict[str, Any]) -> list[str]:
    return [r["expr"] for g in spec["groups"] for r in g["rules"]]
