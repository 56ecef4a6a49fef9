"""The EFA device plugin's values and the NVIDIA device plugin's GPU sharing config (pure builders).

- **EFA** (``aws-efa-k8s-device-plugin`` v0.5.30 of aws/eks-charts, app v0.5.20, in ``kube-system`` as AWS
  installs it): advertises ``vpc.amazonaws.com/efa`` on the nodes of the pools with ``efa: true``. Its
  nodeSelector is their ``eks-ml-platform/efa`` label; the chart's own instance-type affinity (the EFA
  instance types) is kept, and the taints of those pools (GPU, Neuron) are tolerated. Karpenter attaches
  the interfaces itself: with ``spec.networkInterfaces`` unset on the EC2NodeClass, a NodeClaim that
  requests ``vpc.amazonaws.com/efa`` is launched with as many EFA interfaces as its instance type has
  (karpenter-provider-aws v1.14.1 pkg/providers/launchtemplate/launchtemplate.go, ``EFACount``).
- **GPU sharing** (``serving.gpuSharing``): the NVIDIA device plugin 0.18.2's ``config.map`` holds two
  configs, ``default`` (no sharing, the chart's own example) for every GPU node and the sharing config the
  serving pool's nodes select with the label ``nvidia.com/device-plugin.config`` (set by their NodePool),
  so training GPUs are never shared. Each GPU is advertised as ``replicasPerGpu`` ``nvidia.com/gpu``
  (``renameByDefault: false``); with time-slicing a pod asking for more than one fails
  (``failRequestsGreaterThanOne``: one request is an access, not a share). Format: NVIDIA/k8s-device-plugin
  v0.18.2 README, "Shared Access to GPUs".
"""
from __future__ import annotations

from typing import Any, Iterable

import yaml

from components.karpenter import EFA_LABEL, GPU_TAINT, NEURON, NEURON_TAINT, NVIDIA
from infra.config import GpuSharing

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_CONFIG = "default"
# the chart's example of a plain config (deployments/helm/nvidia-device-plugin/values.yaml, config.map)
PLAIN_CONFIG = {"version": "v1", "flags": {"migStrategy": "none"}}


def _toleration(taint: dict[str, str]) -> dict[str, str]:
    return {"key": taint["key"], "operator": "Exists", "effect": taint["effect"]}


def efa_device_plugin_values(kinds: Iterable[str]) -> dict[str, Any]:
    """Values for aws-efa-k8s-device-plugin v0.5.30 (stable/aws-efa-k8s-device-plugin/values.yaml): on the EFA
    pools' nodes (``kinds``: the accelerator kinds of those pools, whose taints it tolerates)."""
    taints = {NVIDIA: GPU_TAINT, NEURON: NEURON_TAINT}
    return {
        "nodeSelector": {EFA_LABEL: "true"},
        "tolerations": [_toleration(taints[k]) for k in sorted(set(kinds)) if k in taints],
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}},
    }


def sharing_config(sharing: GpuSharing) -> dict[str, Any]:
    """The device plugin config file (version v1) that shares each GPU ``replicasPerGpu`` ways."""
    resources = [{"name": GPU_RESOURCE, "replicas": sharing.replicas_per_gpu}]
    if sharing.strategy == "timeSlicing":
        spec: dict[str, Any] = {"timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": True,
                                                "resources": resources}}
    else:  # MPS has no failRequestsGreaterThanOne: each client gets 1/N of memory and compute anyway
        spec = {"mps": {"renameByDefault": False, "resources": resources}}
    return {**PLAIN_CONFIG, "sharing": spec}


def sharing_values(sharing: GpuSharing) -> dict[str, Any]:
    """The chart's ``config``: the plain default for every GPU node, the sharing config by node label."""
    dump = lambda doc: yaml.safe_dump(doc, sort_keys=True)  # noqa: E731 - the chart takes each config as text
    return {"map": {DEFAULT_CONFIG: dump(PLAIN_CONFIG), sharing.config_name: dump(sharing_config(sharing))},
            "default": DEFAULT_CONFIG}
