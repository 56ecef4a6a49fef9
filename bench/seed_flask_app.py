"""The baseline: the seed's sentiment server, as it was written (Flask, one HF
pipeline call per request, threaded dev server), pointed at the same model.

    MODEL_DIR=/models PORT=8081 python bench/seed_flask_app.py [--device cuda]

Used by bench/serve_bench.py to measure what the real server
(workloads/sentiment/server.py) gains. Not for production: no batching, no
limits, no health checks, errors are HTML 500s.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from flask import Flask, jsonify, request  # noqa: E402
from transformers import pipeline  # noqa: E402


def resolve(model_dir: str) -> str:
    """MODEL_DIR root with `latest` -> the version directory (the same rule as the real server)."""
    root = Path(model_dir)
    if (root / "config.json").is_file():
        return str(root)
    return str(root / (root / "latest").read_text().strip())


parser = argparse.ArgumentParser()
parser.add_argument("--device", default=os.environ.get("DEVICE", "cpu"), help="cpu or cuda")
args = parser.parse_args()

app = Flask(__name__)
classifier = pipeline("sentiment-analysis", model=resolve(os.environ["MODEL_DIR"]),
                      device=0 if args.device == "cuda" else -1)


@app.route("/analyze", methods=["POST"])
def analyze():
    return jsonify(classifier(request.json["text"]))


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8081")), threaded=True)
