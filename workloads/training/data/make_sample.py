#!/usr/bin/env python3
"""Generate the shipped sentiment sample (workloads/training/data/sample/).

Deterministic: a fixed seed composes short English reviews of products, films,
books and services from hand-written phrase pools. Each thing reviewed belongs
to a small group (audio gear, kitchen tools, films, restaurants, ...) with its
own aspects, so a review of a kettle talks about kettles. About a third of the
reviews are harder cases: negation ("not bad at all", "I wouldn't recommend
it") and mixed reviews that lean one way ("a bit pricey, but worth it").
No sarcasm: every review means what it says.

    python workloads/training/data/make_sample.py            # rewrite sample/
    python workloads/training/data/make_sample.py --check    # verify sample/ is up to date

Output: train.jsonl and eval.jsonl, one {"text": ..., "label": 0|1} per line
(0 = NEGATIVE, 1 = POSITIVE), balanced, deduplicated (case and punctuation
insensitive), no eval text in train. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

# The phrase tables, next to this file (a script: its folder is on sys.path).
from sample_groups import GROUPS, NEG, POS
from sample_phrases import CLOSERS, FAMILY_ASPECTS, MIXED_FORMS, MIXED_MAJOR, MIXED_MINOR, NEGATION, OPENERS, SHORT

SEED = 20261122
PER_CLASS = 750          # 1500 reviews in all
EVAL_FRACTION = 0.2      # held out, stratified per label
OUT = Path(__file__).resolve().parent / "sample"


def _pool(table: dict, family: str, label: int) -> list[str]:
    return table.get(("*", label), []) + table.get((family, label), [])


def _fill(rng: random.Random, s: str, item: str) -> str:
    return s.format(
        item=item,
        n=rng.choice([2, 3, 4, 5, 6, 8, 10, 12]),
        d=rng.choice([2, 3, 4, 5, 6, 10]),
        h=rng.choice([2, 3, 4, 5, 6]),
        m=rng.choice([5, 10, 15, 20]),
    )


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _sentence(clause: str) -> str:
    clause = clause.strip()
    if not clause:
        return clause
    clause = _cap(clause)
    return clause if clause[-1] in ".!?" else clause + "."


def make_review(rng: random.Random, label: int) -> str:
    group = GROUPS[rng.choice(sorted(GROUPS))]
    fam = group["family"]
    item = rng.choice(group["items"])
    aspects = group[label] + FAMILY_ASPECTS[(fam, label)]
    opener = lambda: rng.choice(OPENERS[(fam, label)])  # noqa: E731
    closer = lambda: rng.choice(CLOSERS[(fam, label)])  # noqa: E731
    form = rng.random()
    if form < 0.30:      # opener, aspect, maybe a closer
        parts = [opener(), _sentence(rng.choice(aspects)), closer() if rng.random() < 0.7 else ""]
    elif form < 0.52:    # two aspects, maybe a closer
        a, b = rng.sample(aspects, 2)
        joiner = rng.choice([", and ", ", plus ", ". Also, ", " and ", ". On top of that, "])
        parts = [_sentence(a + joiner + b), closer() if rng.random() < 0.6 else ""]
    elif form < 0.68:    # negation carries the polarity
        neg = rng.choice(_pool(NEGATION, fam, label))
        r = rng.random()
        if r < 0.35:
            parts = [f"Review of the {item}:" if rng.random() < 0.3 else opener(), neg]
        elif r < 0.7:
            parts = [neg, _sentence(rng.choice(aspects))]
        else:
            parts = [_sentence(rng.choice(aspects)), neg]
        if rng.random() < 0.3:
            parts.append(closer())
    elif form < 0.86:    # mixed, leaning towards `label`
        minor = rng.choice(MIXED_MINOR[(fam, label)])
        major = rng.choice(MIXED_MAJOR[(fam, label)] + aspects)
        body = rng.choice(MIXED_FORMS).format(minor=minor, major=major)
        body = " ".join(_sentence(s) for s in body.split(". "))
        parts = [opener() if rng.random() < 0.2 else "", body, closer() if rng.random() < 0.2 else ""]
    elif form < 0.93:    # short
        parts = [rng.choice(_pool(SHORT, fam, label))]
        if rng.random() < 0.4:
            parts.append(_sentence(rng.choice(aspects)))
    else:                # aspect first, then a verdict
        parts = [_sentence(rng.choice(aspects)), opener() if rng.random() < 0.5 else closer()]
    text = " ".join(p for p in parts if p)
    text = _fill(rng, text, item)
    return re.sub(r"\s+", " ", text).strip()


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def generate(seed: int = SEED, per_class: int = PER_CLASS) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    by_label: dict[int, list[str]] = {NEG: [], POS: []}
    attempts = 0
    while min(len(v) for v in by_label.values()) < per_class:
        attempts += 1
        if attempts > per_class * 200:
            raise RuntimeError("phrase pools too small for the requested size")
        label = NEG if len(by_label[NEG]) < len(by_label[POS]) else POS if len(by_label[POS]) < len(by_label[NEG]) \
            else rng.randint(0, 1)
        text = make_review(rng, label)
        key = _norm(text)
        if not key or key in seen:
            continue
        seen.add(key)
        by_label[label].append(text)
    train: list[dict] = []
    evals: list[dict] = []
    n_eval = int(round(per_class * EVAL_FRACTION))
    for label in (NEG, POS):
        texts = by_label[label]
        rng.shuffle(texts)
        evals += [{"text": t, "label": label} for t in texts[:n_eval]]
        train += [{"text": t, "label": label} for t in texts[n_eval:]]
    rng.shuffle(train)
    rng.shuffle(evals)
    return train, evals


def _dump(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the shipped sentiment sample.")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--per-class", type=int, default=PER_CLASS)
    ap.add_argument("--check", action="store_true", help="exit 1 if the files in --out differ from a fresh run")
    args = ap.parse_args(argv)
    train, evals = generate(args.seed, args.per_class)
    assert not {_norm(r["text"]) for r in train} & {_norm(r["text"]) for r in evals}
    files = {"train.jsonl": _dump(train), "eval.jsonl": _dump(evals)}
    if args.check:
        stale = [n for n, body in files.items()
                 if not (args.out / n).exists() or (args.out / n).read_text(encoding="utf-8") != body]
        if stale:
            print(f"stale: {', '.join(stale)} (run make_sample.py)", file=sys.stderr)
            return 1
        print("sample is up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (args.out / name).write_text(body, encoding="utf-8")
    print(f"wrote {len(train)} train + {len(evals)} eval reviews to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
