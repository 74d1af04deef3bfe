# Two commands do all the set-up on a fresh machine with Python 3.11+ and make:
#   make report   -> .venv, sample data, HTML reports under reports/
#   make test     -> .venv with test extras, the whole suite
# Both install the versions pinned in constraints.txt (what the suite last passed with);
#   make lock     -> rewrites constraints.txt from the current .venv (after upgrading and testing)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROWS   ?= 200000
SEED   ?= 7
SAMPLE := data/sample
# The demo's sample ends last month (its plans move with it); the tests pin the month their
# stored outputs were made for.
PINNED := --end 2025-12

.PHONY: report test bench install install-test sample lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

sample: $(VENV)/.installed
	$(BIN)/kpinb sample-data --out $(SAMPLE) --rows $(ROWS) --seed $(SEED)

report: sample
	$(BIN)/kpinb run --all --jobs 2 --plans-dir $(SAMPLE)/plans --out reports

# Refresh the pins: upgrade what you mean to (pip install -U ... inside .venv), run `make test`, then this.
lock: $(VENV)/.installed-test
	$(BIN)/python scripts/lock.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: $(VENV)/.installed-test
	$(BIN)/kpinb sample-data --out $(SAMPLE) --rows $(ROWS) --seed $(SEED) $(PINNED)
	$(BIN)/ruff check .
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest tests templates notebooks --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

# Speed: ratios against hand-written DuckDB SQL, pandas and kpi-engine (the PyPI peer, installed
# for the benchmark only); writes perf/results.md. Not part of `make test` (a smoke run is).
bench: $(VENV)/.installed
	$(BIN)/kpinb sample-data --out $(SAMPLE) --rows $(ROWS) --seed $(SEED) $(PINNED)
	$(BIN)/python -m pip install -q kpi-engine==1.0.2
	$(BIN)/python perf/run.py --all --out perf/results.md

clean:
	rm -rf $(VENV) reports $(SAMPLE) .pytest_cache
