# `make help` lists the targets. `demo` and `test` install what is missing first, into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Reinstalled when pyproject.toml changes.
STAMP := $(VENV)/.installed
RESULTS ?= results

.PHONY: help install demo test docs bench gpu-check reliability lint format ui clean mmdet

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	bash scripts/install_system_tools.sh
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies (skipped when up to date)

demo: install ## a full small sweep on the built-in demo data, on the CPU (under 10 minutes on 2 cores)
	$(PY) -m sweep results_dir=$(RESULTS)

test: install ## the test suite (no network, no GPU needed)
	$(PY) -m pytest -q

docs: install ## the documentation site into site/ (mkdocs build --strict: any warning fails; open site/index.html)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

bench: install ## benchmarks as ratios against baselines of the same run (BENCH="sensitivity" picks)
	$(PY) -m benchmarks $(BENCH)

gpu-check: install ## on a CUDA machine: ViT-B/16, Faster R-CNN, SegFormer on JPEG XL (img/s, GPU %, memory)
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK)

reliability: install ## bad images, driver and worker kills, lock race, MLflow outage, full disk; compares every result (~25 min)
	$(PY) -m reliability

mmdet: install ## opt-in MMDetection backend (model=faster_rcnn_mmdet): builds mmcv 2.1.0 once per machine (10-25 min; wheel cached in ~/.cache/sweep)
	bash scripts/install_mmdet.sh $(PY)

lint: install ## ruff check, format check, and the layers (lint-imports: the contracts in pyproject.toml)
	$(PY) -m ruff check sweep tests benchmarks reliability docs
	$(PY) -m ruff format --check sweep tests benchmarks reliability docs
	$(VENV)/bin/lint-imports

format: install ## ruff format and autofix
	$(PY) -m ruff format sweep tests benchmarks reliability docs
	$(PY) -m ruff check --fix sweep tests benchmarks reliability docs

ui: install ## the MLflow dashboard of results/ on http://127.0.0.1:5000 (this machine only; the sweep prints its runs page)
	@echo "runs: http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning (the sweep logs its own)"
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(RESULTS)/mlflow.db --host 127.0.0.1 --port 5000

clean: ## remove caches (keeps .venv and results/; `rm -rf results/*` discards results)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
