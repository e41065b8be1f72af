# Two commands on a fresh machine:  `make run` (the pipeline on the real data)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DS     ?= $(shell date -u +%Y-%m-%d)
PROFILE ?= cpu

ARGS   ?=

.PHONY: setup run test test-unit lint airflow-ui bench-embed bench-semantic-ids bench-stages bench-quality bench-screen bench-blend \
        bench-inference bench-serving bench-scaling clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run: setup  ## the main job: liger_retrain then liger_nightly via `airflow dags test` for DS
	$(BIN)/liger run --ds $(DS) --profile $(PROFILE) $(ARGS)

test: setup  ## unit, Spark job and end-to-end tests
	$(BIN)/python -m pytest -ra

lint: setup  ## ruff format check, ruff lint (pyflakes + pycodestyle) and mypy on liger_core (settings in pyproject.toml), as CI runs them
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test-unit: setup  ## only the fast liger_core tests (no Spark)
	$(BIN)/python -m pytest -ra tests/unit

airflow-ui: setup  ## airflow standalone with the project's DAGs (own process group)
	scripts/airflow_ui.sh

bench-embed: setup  ## Spark embedding path vs raw SentenceTransformer.encode
	$(BIN)/python -m benchmarks.embed_throughput

bench-semantic-ids: setup  ## RQ-VAE training + ID assignment on the real catalog
	$(BIN)/python -m benchmarks.semantic_ids_beauty --ds $(DS)

bench-stages: setup  ## wall time + peak memory per stage, then the nightly DAG (writes DS's tables)
	$(BIN)/python -m benchmarks.pipeline_stages --ds $(DS) --profile $(PROFILE) $(ARGS)

bench-quality: setup  ## tiger, dense, liger and the baselines side by side on DS's tables (after bench-stages or run)
	$(BIN)/python -m benchmarks.quality_beauty --ds $(DS) --profile $(PROFILE) $(ARGS)

bench-screen: setup  ## short equal-time training screens, ARGS="--config 'a=1,b=2' --config '...'"
	$(BIN)/python -m benchmarks.train_screen --ds $(DS) --profile $(PROFILE) $(ARGS)

bench-blend: setup  ## in-set vs cold-start quality of every hybrid blend, per cold weight (trains once, ARGS="--minutes 7")
	$(BIN)/python -m benchmarks.blend_sweep --ds $(DS) --profile $(PROFILE) $(ARGS)

bench-inference: setup  ## production hybrid vs naive beam vs dense scoring, champion model of DS
	$(BIN)/python -m benchmarks.inference_speed --ds $(DS) --profile $(PROFILE) $(ARGS)

bench-serving: setup  ## paper-size production hybrid vs HF T5 beam generate of the same size, one run
	$(BIN)/python -m benchmarks.serving_peer --profile gpu $(ARGS)

bench-scaling: setup  ## synthetic 12k / 100k / 1M catalogs: assignment, index build, per-user time
	$(BIN)/python -m benchmarks.scaling --profile $(PROFILE) $(ARGS)

clean:
	rm -rf var .pytest_cache
