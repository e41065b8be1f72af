# Two commands on a fresh machine:  `make run` (the pipeline on the real data)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DS     ?= $(shell date -u +%Y-%m-%d)
PROFILE ?= cpu

.PHONY: setup run test test-unit bench-embed clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run: setup  ## ingest + embed on the configured data (default: ../shared Beauty 5-core)
	$(BIN)/liger run --ds $(DS) --profile $(PROFILE)

test: setup  ## unit, Spark job and end-to-end tests
	$(BIN)/python -m pytest -ra

test-unit: setup  ## only the fast liger_core tests (no Spark)
	$(BIN)/python -m pytest -ra tests/unit

bench-embed: setup  ## Spark embedding path vs raw SentenceTransformer.encode
	$(BIN)/python benchmarks/embed_throughput.py

clean:
	rm -rf var .pytest_cache
