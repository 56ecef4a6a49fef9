"""How the storage add-on is torn down without leaking data or hanging on finalizers (pure).

``storage.destroyData: true`` (``infra.conventions.DESTROY_DATA_KEY``), applied with ``pulumi up``
right before ``pulumi destroy``, sets the CephCluster's ``cleanupPolicy`` and force-deletion on
the block pool; ``teardown_steps`` is the order infra.teardown prints and follows.
"""
from __future__ import annotations

from typing import Any, Optional

from components.storage.names import DESTROY_CONFIRMATION
from components.storage.settings import StorageSettings
from infra.conventions import DESTROY_DATA_KEY, WORKLOADS_NAMESPACE

#: ``storage.destroyData``: the config path ``pulumi config set --path`` takes (no project prefix).
DESTROY_DATA_PATH = DESTROY_DATA_KEY.partition(":")[2]


def cleanup_policy(s: StorageSettings) -> Optional[dict[str, Any]]:
    """Rook's cleanup policy, only when teardown was asked for (it stops all reconciling)."""
    if not s.storage.destroy_data:
        return None
    return {"confirmation": DESTROY_CONFIRMATION,
            "sanitizeDisks": {"method": "quick", "dataSource": "zero", "iteration": 1},
            # Do not wait forever for PVs that nobody will delete: the pool is force-deleted anyway.
            "allowUninstallWithVolumes": True}


def teardown_steps(stack: str) -> list[str]:
    """What a safe teardown of the stack's storage does, in order (for infra.teardown and the README)."""
    return [
        f"pulumi config set --path {DESTROY_DATA_PATH} true --stack {stack}",
        f"pulumi up --yes --stack {stack}   # CephCluster cleanupPolicy + force-deletion on the pool; Rook stops reconciling",
        f"kubectl delete pvc --all -n {WORKLOADS_NAMESPACE}   # PVCs Pulumi does not own (the stack's own go first on destroy)",
        f"pulumi destroy --yes --stack {stack}   # StorageClasses -> pool/filesystem -> CephCluster -> CSI -> operator",
    ]
