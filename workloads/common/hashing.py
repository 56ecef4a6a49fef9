"""The content hash of a labelled data set, shared by data preparation and the trainer."""
from __future__ import annotations

import hashlib
import json

DATA_HASH_CHARS = 10


def data_hash(*splits: list[dict]) -> str:
    """Short hash of the (text, label) pairs of each split, in order (stable across file formatting)."""
    h = hashlib.sha256()
    for rows in splits:
        for r in rows:
            h.update(json.dumps([r["text"], r["label"]], ensure_ascii=False).encode())
            h.update(b"\n")
        h.update(b"\x00")
    return h.hexdigest()[:DATA_HASH_CHARS]
