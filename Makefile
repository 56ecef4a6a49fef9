# Two commands on a fresh machine: `make preview` and `make test`. Both install what they need.
PYTHON ?= python3
STACK ?= dev
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov

.PHONY: preview check test test-fast deps bench clean upstream images

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	touch $@

deps: $(VENV)/.dev $(CHECKOV_VENV)/.installed

## Offline preview of a stack (the real program under mocks): build/$(STACK)/preview.json + manifests/
preview: $(VENV)/.runtime
	$(PY) -m infra render --stack $(STACK) --out build/$(STACK)

## Schemas, CRDs, CEL rules, policy and checkov over the rendered stack
check: deps
	$(PY) -m infra check --stack $(STACK)

## The whole suite (what CI runs), under the coverage gate (.coveragerc; README "Testing"): the table of
## every module below 100% (missing lines), the total, and a failure below COVERAGE_GATE% of product statements.
COVERAGE_GATE := 95
test: deps
	rm -rf build/coverage && mkdir -p build/coverage
	$(PY) -m pytest -n 2 --dist loadfile --cov --cov-report=term-missing:skip-covered --cov-fail-under=$(COVERAGE_GATE)

## Everything but the slow tests (no image builds, no real training or serving), without the gate
test-fast: deps
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

## Fill the cache (~/.cache/eks-ml-platform/upstream) with every pinned upstream file (needs network)
upstream: $(VENV)/.runtime
	$(PY) -m infra upstream fetch

## The CPU trainer and server images with buildah, no Docker (root; apt-get install -y buildah debootstrap)
images:
	bash scripts/build_images.sh

## Benchmarks (not timed tests; README "Measured figures"): the serving ones on a model the trainer made from the
## shipped sample (with its ONNX graphs), like the tests' fixture
BENCH_MODELS := build/bench/models
bench: deps
	$(PY) bench/train_bench.py --out bench/results/train.json
	test -f $(BENCH_MODELS)/latest || $(PY) workloads/training/train.py --data workloads/training/data/sample \
		--model-dir $(BENCH_MODELS) --checkpoint-dir build/bench/ckpt --epochs 2 --max-samples 480 --num-workers 0
	$(PY) bench/serve_bench.py --variants --model-dir $(BENCH_MODELS) --out bench/results/serve-variants.json
	$(PY) bench/serve_bench.py --profile --model-dir $(BENCH_MODELS) --out bench/results/serve.json

clean:
	rm -rf build .pytest_cache
