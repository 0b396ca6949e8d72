# Two commands on a fresh machine: `make demo` and `make test`.
# Airflow: the newest supported version by default. Every tested version has an input
# locks/airflow-<version>.in and a lock locks/airflow-<version>.txt (`make lock` regenerates them all);
# `make venv AIRFLOW_VERSION=3.1.8` builds .venv-3.1.8 for another one, and
# `make test AIRFLOW_VERSION=3.1.8` runs in it (PYTHON=... picks the interpreter, 3.11 or 3.12).
# PLATFORM=<version> builds and uses .venv-platform-<version> instead: that Airflow with the libraries its
# platforms install (locks/platform-<version>.txt, Airflow's constraints of its release day, `make
# platform-sets`), requirements.txt and requirements-dev.txt on top, every pin of the set kept (-c).
AIRFLOW_NEWEST  := 3.3.2
PLATFORM ?=
AIRFLOW_VERSION ?= $(or $(PLATFORM),$(AIRFLOW_NEWEST))
# Platform sets are compiled for Python 3.12 (the managed services' Airflow 3 images): the first
# interpreter that runs as 3.12 (pyenv's shim may only name one).
PYTHON312 = $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12),\
	$(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null)))
PYTHON ?= $(if $(PLATFORM),$(PYTHON312),$(shell command -v python3.11 || command -v python3))
ifneq ($(PLATFORM),)
ifeq ($(strip $(PYTHON)),)
$(error Python 3.12 not found: the platform sets are compiled for it (install python3.12, or PYTHON=...))
endif
endif
VENV   ?= $(if $(PLATFORM),.venv-platform-$(PLATFORM),$(if $(filter $(AIRFLOW_NEWEST),$(AIRFLOW_VERSION)),.venv,.venv-$(AIRFLOW_VERSION)))
PY     := $(VENV)/bin/python
LOCK   := $(if $(PLATFORM),locks/platform-$(PLATFORM).txt,locks/airflow-$(AIRFLOW_VERSION).txt)
INPUT  := $(if $(PLATFORM),apache-airflow==$(PLATFORM),-r locks/airflow-$(AIRFLOW_VERSION).in)
STAMP  := $(VENV)/.installed-airflow-$(AIRFLOW_VERSION)

.PHONY: venv demo test test-fast bench bench-5m bench-scale bench-deliveries lint format lock platform-sets plugins-zip clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt $(if $(PLATFORM),,locks/airflow-$(AIRFLOW_VERSION).in) $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	# --compile-bytecode: as pip does by default; without .pyc files (uv's default, and machines that set
	# PYTHONDONTWRITEBYTECODE) every task process compiles Airflow again: about 3 s per task start.
	$(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode \
		-r requirements-dev.txt $(INPUT) -c $(LOCK)
	rm -f $(VENV)/.installed-airflow-*
	# The constraints this environment was built from (tests/test_deploy_system.py installs with them).
	echo "$(LOCK)" > $(VENV)/.constraints
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

# The deliveries page's queries and HTML for 1,100 destinations x 14 days (docs/deliveries.md).
bench-deliveries: venv
	$(PY) -m devtools.bench_deliveries $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m devtools.lockcheck

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One lock per tested Airflow version, for Python 3.11 and newer (--universal): requirements-dev.txt
# resolved together with that Airflow, as Airflow's own constraints files pin a coherent set.
lock: venv
	set -e; for input in locks/airflow-*.in; do \
		$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --custom-compile-command "make lock" \
			"$$input" requirements-dev.txt -o "$${input%.in}.txt"; \
	done

# Airflow's constraints of each supported release's day, as users' platforms install them
# (devtools/platform_sets.py; the release day is read from PyPI). Minutes: every provider is resolved.
platform-sets: venv
	$(PY) -m devtools.platform_sets

# plugins.zip for a managed Airflow service (docs/deploy.md): plugins/ with include/ inside the package.
plugins-zip: venv
	$(PY) -m devtools.plugins_zip dist/plugins.zip

clean:
	rm -rf demo-output .demo .bench .airflow .pytest_cache dist
