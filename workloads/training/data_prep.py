#!/usr/bin/env python3
"""Fill the dataset volume for the trainer (the data-prep Job's entry point).

    python workloads/training/data_prep.py --out /data                          # shipped sample (offline)
    python workloads/training/data_prep.py --out /data --source s3 --s3-uri s3://bucket/prefix/
    python workloads/training/data_prep.py --out /data --source hf --hf-dataset stanfordnlp/sst2 \
        --text-column sentence --label-column label --eval-split validation

Writes OUT/train.jsonl and OUT/eval.jsonl ({"text": ..., "label": 0|1}, 0 = NEGATIVE,
1 = POSITIVE) and OUT/DATASET.json (source, counts, content hash). Files are written
to temporaries and renamed, so the trainer never sees half a file. When OUT already
holds a dataset it is left alone unless --force is given (a re-run Job is a no-op).

Every option can also come from the environment (DATA_SOURCE, S3_URI, HF_DATASET,
HF_CONFIG, ...), which is how the Kubernetes Job is configured.

Sources:
- sample: copies workloads/training/data/sample/ (shipped in the image; no network).
- s3: downloads train.jsonl (and eval.jsonl, else a seeded 20% split of train) from the
  prefix with boto3 (the pod's IAM role / IRSA provides credentials).
- hf: loads a Hugging Face hub dataset with `datasets` and maps its text/label columns.

boto3 and datasets are optional imports: only the source that needs them imports them.
Standard library otherwise; no torch.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Iterable

if not __package__:  # run as a file (the data-prep Job's command): import the package, not this folder's files
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parents[1]), *(p for p in sys.path if Path(p or os.curdir).resolve() != _HERE)]

from workloads.common.hashing import data_hash  # noqa: E402  (the trainer's data hash too)

PROG = "data_prep.py"
HERE = Path(__file__).resolve().parent
SAMPLE_DIR = HERE / "data" / "sample"
LABEL_NAMES = {"negative": 0, "neg": 0, "0": 0, "positive": 1, "pos": 1, "1": 1}


class PrepError(Exception):
    pass


def _env(name: str, default=None):
    v = os.environ.get(name)
    return v if v not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Prepare train.jsonl/eval.jsonl for train.py.")
    p.add_argument("--out", type=Path, default=_env("DATA_DIR"), help="target folder (env DATA_DIR)")
    p.add_argument("--source", choices=("sample", "s3", "hf"), default=_env("DATA_SOURCE", "sample"),
                   help="where the data come from (env DATA_SOURCE; default sample)")
    p.add_argument("--s3-uri", default=_env("S3_URI"), help="s3://bucket/prefix/ holding train.jsonl [eval.jsonl]")
    p.add_argument("--hf-dataset", default=_env("HF_DATASET"), help="hub dataset id, e.g. stanfordnlp/sst2")
    p.add_argument("--hf-config", default=_env("HF_CONFIG"), help="dataset config name")
    p.add_argument("--hf-revision", default=_env("HF_REVISION"), help="pin a dataset revision (commit)")
    p.add_argument("--train-split", default=_env("TRAIN_SPLIT", "train"))
    p.add_argument("--eval-split", default=_env("EVAL_SPLIT"),
                   help="hub split held out for eval (default: a seeded split of the train split)")
    p.add_argument("--text-column", default=_env("TEXT_COLUMN", "text"))
    p.add_argument("--label-column", default=_env("LABEL_COLUMN", "label"))
    p.add_argument("--eval-fraction", type=float, default=_env("EVAL_FRACTION", "0.2"),
                   help="held-out share when no eval split/file exists (0.2)")
    p.add_argument("--max-train", type=int, default=_env("MAX_TRAIN", "0"), help="cap train rows (0: all)")
    p.add_argument("--max-eval", type=int, default=_env("MAX_EVAL", "0"), help="cap eval rows (0: all)")
    p.add_argument("--seed", type=int, default=_env("SEED", "42"))
    p.add_argument("--force", action="store_true", default=_env("FORCE", "") in ("1", "true", "yes"),
                   help="overwrite an existing dataset in --out")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    a = p.parse_args(argv)  # string defaults from the environment go through `type` too
    if a.out is None:
        p.error("--out is required (or set DATA_DIR)")
    if a.out.exists() and not a.out.is_dir():
        p.error(f"--out {a.out}: exists and is not a directory")
    if a.source == "s3":
        if not a.s3_uri:
            p.error("--source s3 needs --s3-uri s3://bucket/prefix/ (or S3_URI)")
        if not a.s3_uri.startswith("s3://") or len(a.s3_uri) <= len("s3://"):
            p.error(f"--s3-uri must look like s3://bucket/prefix/, got {a.s3_uri!r}")
    if a.source == "hf" and not a.hf_dataset:
        p.error("--source hf needs --hf-dataset ID (or HF_DATASET)")
    if not 0.0 < a.eval_fraction < 1.0:
        p.error(f"--eval-fraction must be between 0 and 1, got {a.eval_fraction}")
    if a.max_train < 0 or a.max_eval < 0:
        p.error("--max-train/--max-eval must be >= 0")
    if a.source == "sample" and not (SAMPLE_DIR / "train.jsonl").is_file():
        p.error(f"the shipped sample is missing: {SAMPLE_DIR}/train.jsonl")
    return a


# ---------------------------------------------------------------------------

def normalise_label(value, where: str) -> int:
    if isinstance(value, bool):
        raise PrepError(f"{where}: label must be 0/1 or NEGATIVE/POSITIVE, got {value!r}")
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    lab = LABEL_NAMES.get(str(value).strip().lower())
    if lab is None:
        raise PrepError(f"{where}: label must be 0/1 or NEGATIVE/POSITIVE, got {value!r}")
    return lab


def normalise_rows(records: Iterable[dict], text_col: str, label_col: str, where: str) -> list[dict]:
    rows = []
    for i, rec in enumerate(records, 1):
        if text_col not in rec or label_col not in rec:
            raise PrepError(f"{where} row {i}: needs columns {text_col!r} and {label_col!r}, has {sorted(rec)}")
        text = str(rec[text_col]).strip()
        if text:
            rows.append({"text": text, "label": normalise_label(rec[label_col], f"{where} row {i}")})
    if not rows:
        raise PrepError(f"{where}: no rows")
    return rows


def read_jsonl_text(body: str, where: str) -> list[dict]:
    recs = []
    for n, line in enumerate(body.splitlines(), 1):
        if line.strip():
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PrepError(f"{where}:{n}: not valid JSON ({exc.msg})") from None
    return recs


def split_eval(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_eval = max(1, int(round(len(rows) * fraction)))
    held = set(idx[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def dedupe_against(train: list[dict], evals: list[dict]) -> list[dict]:
    """Drop train rows whose text also appears in eval (no leakage), and duplicates within train."""
    seen = {r["text"].strip().lower() for r in evals}
    out = []
    for r in train:
        k = r["text"].strip().lower()
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def cap(rows: list[dict], n: int, seed: int) -> list[dict]:
    if not n or n >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def load_sample(a: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    def read(name: str) -> list[dict]:
        path = SAMPLE_DIR / name
        return normalise_rows(read_jsonl_text(path.read_text(encoding="utf-8"), str(path)), "text", "label", str(path))
    return read("train.jsonl"), read("eval.jsonl")


def load_s3(a: argparse.Namespace) -> tuple[list[dict], list[dict] | None]:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise PrepError("--source s3 needs boto3 (pip install boto3)") from None
    bucket, _, prefix = a.s3_uri[len("s3://"):].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    s3 = boto3.client("s3")

    def get(name: str) -> str | None:
        key = prefix + name
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise PrepError(f"s3://{bucket}/{key}: {exc}") from None
        except BotoCoreError as exc:
            raise PrepError(f"s3://{bucket}/{key}: {exc}") from None

    body = get("train.jsonl")
    if body is None:
        raise PrepError(f"{a.s3_uri}: no train.jsonl under this prefix")
    where = f"s3://{bucket}/{prefix}"
    train = normalise_rows(read_jsonl_text(body, where + "train.jsonl"), a.text_column, a.label_column,
                           where + "train.jsonl")
    eval_body = get("eval.jsonl")
    evals = None if eval_body is None else normalise_rows(
        read_jsonl_text(eval_body, where + "eval.jsonl"), a.text_column, a.label_column, where + "eval.jsonl")
    return train, evals


def load_hf(a: argparse.Namespace) -> tuple[list[dict], list[dict] | None]:
    try:
        import datasets
    except ImportError:
        raise PrepError("--source hf needs the `datasets` package (pip install datasets)") from None

    def split(name: str):
        try:
            return datasets.load_dataset(a.hf_dataset, a.hf_config, split=name, revision=a.hf_revision)
        except Exception as exc:  # datasets raises many types (network, missing split, auth)
            raise PrepError(f"cannot load {a.hf_dataset!r} split {name!r}: {str(exc).splitlines()[0]}") from None

    def rows(ds, name: str) -> list[dict]:
        # A ClassLabel column whose names say which is which ("neg"/"pos", "negative"/"positive")
        # is mapped through those names; otherwise the values must already be 0/1.
        feat = getattr(ds, "features", {}).get(a.label_column)
        names = list(getattr(feat, "names", None) or [])
        by_name = len(names) == 2 and all(n.lower() in LABEL_NAMES for n in names)

        def rec(r: dict) -> dict:
            label = r.get(a.label_column)
            if by_name and isinstance(label, int) and 0 <= label < 2:
                label = names[label]
            return {**r, a.label_column: label}

        return normalise_rows((rec(r) for r in ds), a.text_column, a.label_column, f"{a.hf_dataset}[{name}]")

    train = rows(split(a.train_split), a.train_split)
    evals = rows(split(a.eval_split), a.eval_split) if a.eval_split else None
    return train, evals


def write_dataset(out: Path, train: list[dict], evals: list[dict], manifest: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "train.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train),
        "eval.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evals),
        "DATASET.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n",
    }
    for name, body in files.items():  # DATASET.json last: its presence means "complete"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, out / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def run(a: argparse.Namespace) -> dict:
    if (a.out / "DATASET.json").is_file() and (a.out / "train.jsonl").is_file() and not a.force:
        manifest = json.loads((a.out / "DATASET.json").read_text())
        print(f"dataset already present in {a.out} ({manifest.get('source')}, {manifest.get('train')} train / "
              f"{manifest.get('eval')} eval); use --force to replace it")
        return manifest
    if a.source == "sample":
        train, evals = load_sample(a)
        origin = str(SAMPLE_DIR)
    elif a.source == "s3":
        train, evals = load_s3(a)
        origin = a.s3_uri
    else:
        train, evals = load_hf(a)
        origin = a.hf_dataset + (f"/{a.hf_config}" if a.hf_config else "")
    if evals is None:
        train, evals = split_eval(train, a.eval_fraction, a.seed)
    train = dedupe_against(train, evals)
    train, evals = cap(train, a.max_train, a.seed), cap(evals, a.max_eval, a.seed)
    for name, rows in (("train", train), ("eval", evals)):
        if not rows:
            raise PrepError(f"the {name} split is empty after preparation")
    manifest = {
        "source": a.source, "origin": origin, "train": len(train), "eval": len(evals),
        "train_positive": sum(r["label"] for r in train), "eval_positive": sum(r["label"] for r in evals),
        "data_hash": data_hash(train, evals),
    }
    write_dataset(a.out, train, evals, manifest)
    print(f"wrote {len(train)} train + {len(evals)} eval examples from {origin} to {a.out}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        run(a)
    except PrepError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
