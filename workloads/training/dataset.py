"""Data for the trainer: JSONL reading, the torch Dataset, the collator (tokenizes in DataLoader
worker processes) and a resumable DistributedSampler. The data hash is workloads.common.hashing's
(data prep writes the same one into DATASET.json).

JSONL format, one object per line: {"text": "...", "label": 0|1}
(0 = NEGATIVE, 1 = POSITIVE; the strings "NEGATIVE"/"POSITIVE" are accepted too).
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler

ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}
_LABEL_ALIASES = {"negative": 0, "neg": 0, "positive": 1, "pos": 1, "0": 0, "1": 1}


class DataError(ValueError):
    """A data file that cannot be used (message names the file and line)."""


def read_jsonl(path: Path) -> list[dict]:
    rows: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise DataError(f"{path}:{lineno}: expected an object with a string 'text'")
            label = obj.get("label")
            if isinstance(label, bool) or label not in (0, 1):
                label = _LABEL_ALIASES.get(str(label).strip().lower()) if label is not None else None
            if label is None:
                raise DataError(f"{path}:{lineno}: 'label' must be 0, 1, NEGATIVE or POSITIVE, got {obj.get('label')!r}")
            rows.append({"text": obj["text"], "label": int(label)})
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def subsample(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded subset of `limit` rows in their file order (all rows if limit is None or larger)."""
    if limit is None or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


class ReviewDataset(Dataset):
    def __init__(self, rows: list[dict]):
        self.texts = [r["text"] for r in rows]
        self.labels = [r["label"] for r in rows]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.labels[i]


class Collator:
    """Tokenizes a batch with dynamic padding. Runs inside DataLoader workers (picklable)."""

    def __init__(self, tokenizer, max_length: int, pad_to_multiple_of: int | None = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of  # 8 on GPUs: tensor-core friendly, fewer distinct shapes

    def __call__(self, batch: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        texts = [t for t, _ in batch]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        enc = dict(enc)
        enc["labels"] = torch.tensor([y for _, y in batch], dtype=torch.long)
        return enc


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler (each rank gets its own shard, reshuffled per epoch from
    `seed + epoch`) that can skip the first `skip` samples of this rank's shard,
    so a resumed epoch does not repeat the batches it already trained on."""

    def __init__(self, dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = max(0, min(int(skip), self.num_samples))

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def shard_len(n: int, world_size: int) -> int:
    """Samples per rank for a padded DistributedSampler over n items."""
    return math.ceil(n / world_size)


def eval_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Unpadded, disjoint eval shard: every example is counted exactly once."""
    return list(range(rank, n, world_size))
