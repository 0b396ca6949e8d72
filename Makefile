# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast bench bench-5m bench-scale lint format lock clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	# --compile-bytecode: as pip does by default; without .pyc files (uv's default, and machines that set
	# PYTHONDONTWRITEBYTECODE) every task process compiles Airflow again: about 3 s per task start.
	$(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -r requirements-dev.txt -c requirements.lock
	touch $(STAMP)

demo: venv
	$(PY) -m devtools.demo

test: venv
	$(PY) -m pytest

bench: venv
	$(PY) -m devtools.bench $(BENCH_ARGS)

# SqlToS3Operator holds the whole result in pandas (5.4 GB at 1M rows): at 5M it does not fit in
# 24 GB, so the 5M run measures the rest (the memory bar matters most there).
bench-5m: venv
	$(PY) -m devtools.bench --rows 5000000 --skip-sqltos3 --others-rows 0 --repeat 1 $(BENCH_ARGS)

# One run over 1,100 destinations (more than Airflow's default max_map_length) on a running Airflow:
# per-destination scheduler/worker cost and metadata rows (docs/scale-out.md). Minutes of every core.
bench-scale: venv
	$(PY) -m devtools.bench_scale $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m devtools.lockcheck

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: venv
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 requirements-dev.txt -o requirements.lock

clean:
	rm -rf demo-output .demo .bench .airflow .pytest_cache
