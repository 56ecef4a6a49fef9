"""Stack configuration: one validated ``PlatformConfig``.

This package validates data and nothing else: it imports no resource module, so the
CLI, the cost estimator and the teardown guard can read a stack's settings without
building a Pulumi program.

Config keys are camelCase in ``Pulumi.<stack>.yaml`` (``eks-ml-platform:cluster`` with
``version: "1.34"``). Every user mistake becomes one line that names the key, e.g.
``eks-ml-platform:cluster.version: 1.19 is not supported; use 1.30-1.36``.

Modules: ``base`` (ConfigError, the model base, shared regexes and quantity helpers),
``cluster``, ``network``, ``node_pools``, ``addons`` (add-ons, storage, monitoring),
``training``, ``serving``, ``images``, ``platform`` (PlatformConfig and the cross checks) and
``loading`` (reading stack files, error formatting). Every name is re-exported here, so
``from infra.config import ...`` works as it did when this was one module.
"""
from __future__ import annotations

from infra.config.addons import AddonsConfig, AddonToggle, MonitoringConfig, StorageConfig
from infra.config.base import (
    CPU_QUANTITY_RE,
    DNS_LABEL_RE,
    IMAGE_RE,
    PROJECT,
    QUANTITY_RE,
    ConfigError,
    cpu_millis,
    memory_bytes,
)
from infra.config.cluster import (
    DEFAULT_K8S,
    LOG_TYPES,
    SUPPORTED_K8S,
    AdminPrincipal,
    ClusterConfig,
    EndpointConfig,
    SystemNodesConfig,
)
from infra.config.loading import (
    SECRET_KEYS,
    from_flat,
    load_from_pulumi,
    load_stack_config,
    merged_stack_config,
    parse_config,
    project_defaults,
    read_stack_file,
    split_stack_config,
)
from infra.config.cross import images_problems, needed_images, serving_problems, training_problems
from infra.config.images import IMAGE_KEYS, ImagesConfig, image_ref
from infra.config.instances import KNOWN_FAMILIES, NEURON_FAMILIES, NVIDIA_FAMILIES
from infra.config.network import VpcConfig
from infra.config.node_pools import (
    AMI_ALIAS_RE,
    ARM64_ONLY_FAMILIES,
    DURATION_RE,
    INF1_SIZES,
    DisruptionBudget,
    EFA_FAMILIES,
    EFA_TYPES,
    NodePoolConfig,
    PoolLimits,
    cpu_pool,
    default_node_pools,
)
from infra.config.platform import AWS_REGION_RE, PlatformConfig
from infra.config.queue import (
    CLUSTER_QUEUE,
    COHORT,
    LOCAL_QUEUE,
    PRIORITY_LABEL,
    QUEUE_LABEL,
    URGENT_PRIORITY_CLASS,
    TrainingQueueConfig,
    kueue_enabled,
    queue_pools,
    queue_settings,
)
from infra.config.serving import (
    ACM_ARN_RE,
    DEVICE_PLUGIN_CONFIG_LABEL,
    HOSTNAME_RE,
    MPS_CAPABLE_LABEL,
    SERVING_DEVICE_ACCELERATOR,
    GpuSharing,
    ServingConfig,
    ServingIngressConfig,
    ServingResources,
)
from infra.config.training import (
    CRON_MACROS,
    HF_URI_RE,
    S3_URI_RE,
    TIME_ZONE_RE,
    TrainingConfig,
    TrainingDatasetConfig,
    cron_problem,
)

__all__ = [
    "ACM_ARN_RE", "AMI_ALIAS_RE", "ARM64_ONLY_FAMILIES", "AWS_REGION_RE", "AddonToggle", "AddonsConfig",
    "AdminPrincipal", "CPU_QUANTITY_RE", "CRON_MACROS", "ClusterConfig", "ConfigError", "DEFAULT_K8S",
    "DNS_LABEL_RE", "DURATION_RE", "DisruptionBudget", "EndpointConfig", "HF_URI_RE", "HOSTNAME_RE", "IMAGE_KEYS", "KNOWN_FAMILIES", "IMAGE_RE", "ImagesConfig",
    "INF1_SIZES", "LOG_TYPES", "MonitoringConfig", "NEURON_FAMILIES", "NVIDIA_FAMILIES", "NodePoolConfig",
    "PROJECT", "PlatformConfig", "PoolLimits", "QUANTITY_RE", "S3_URI_RE", "SECRET_KEYS",
    "SERVING_DEVICE_ACCELERATOR", "SUPPORTED_K8S", "ServingConfig", "ServingIngressConfig", "ServingResources",
    "StorageConfig", "SystemNodesConfig", "TIME_ZONE_RE", "TrainingConfig", "TrainingDatasetConfig", "VpcConfig",
    "cpu_millis", "cpu_pool", "cron_problem", "default_node_pools", "from_flat", "image_ref", "images_problems", "load_from_pulumi",
    "load_stack_config", "memory_bytes", "merged_stack_config", "needed_images", "parse_config", "project_defaults",
    "read_stack_file", "serving_problems", "split_stack_config", "training_problems",
    "CLUSTER_QUEUE", "COHORT", "LOCAL_QUEUE", "PRIORITY_LABEL", "QUEUE_LABEL", "URGENT_PRIORITY_CLASS",
    "TrainingQueueConfig", "kueue_enabled", "queue_pools", "queue_settings",
    "DEVICE_PLUGIN_CONFIG_LABEL", "EFA_FAMILIES", "EFA_TYPES", "GpuSharing", "MPS_CAPABLE_LABEL",
]
