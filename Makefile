# snncomp: two entry points. `make serve` builds and serves the site; `make test` runs every check.
# Both create the virtual environment on first use and reuse it afterwards.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export NO_MKDOCS_2_WARNING := 1
STAMP := $(VENV)/.snncomp-installed
# --no-compile: the packages are byte-compiled as they are first imported instead of all at install (about
# 30 s less to set up on 2 cores: most of torch is never imported); so Python must be allowed to write
# those files, whatever the calling shell says
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile
unexport PYTHONDONTWRITEBYTECODE

.PHONY: env serve build test bench clean

env: $(STAMP)

# requirements.txt is a complete pin list: installed without the resolver, and pip check proves it complete;
# the test peers' own requirements (CUDA torch, ...) are not wanted
$(STAMP): requirements.txt requirements-peers.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --no-deps -r requirements.txt
	$(BIN)/python -m pip check --disable-pip-version-check
	$(PIP) --no-deps -r requirements-peers.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

# --dirty: after an edit only the pages that changed are built again (the generated ones included: the hook
# keeps them on disk under .cache/site and rewrites a page only when its text changes); the first build
# runs the notebooks whose cached run is missing in parallel, one kernel per core (hooks/sitegen.py)
serve: env
	$(BIN)/mkdocs serve --strict --dirty -a 127.0.0.1:8000

build: env
	$(BIN)/mkdocs build --strict

test: env
	$(BIN)/python -m pytest

bench: env  # the leaderboard and every section spec into the committed store (resumes), then the two speed scripts
	$(BIN)/snncomp bench --jobs 2 --output benchmarks/results/board.jsonl
	$(BIN)/snncomp bench --spec all --jobs 2 --output benchmarks/results/board.jsonl
	$(BIN)/python benchmarks/neurons.py
	$(BIN)/python benchmarks/event_generation.py

clean:
	rm -rf site .cache
