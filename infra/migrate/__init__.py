"""``python -m infra migrate``: rewrite manifests for APIs the platform's pinned versions no longer serve.

Tooling, never imported by the Pulumi program. Karpenter (``migrate karpenter``) is the one target
today: ``karpenter.sh/v1alpha5`` Provisioner, ``karpenter.k8s.aws/v1alpha1`` AWSNodeTemplate and the
``v1beta1`` NodePool/EC2NodeClass become ``karpenter.sh/v1`` NodePool and ``karpenter.k8s.aws/v1``
EC2NodeClass. Modules: :mod:`.karpenter` (the migration, objects in and objects plus warnings out),
:mod:`.nodepool` and :mod:`.nodeclass` (the field mappings, pure), :mod:`.common` (warnings, errors,
durations, placeholders), :mod:`.cli` (reading files, the same checks as ``check --manifests``,
writing the result).
"""
