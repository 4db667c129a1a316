# superres: `make run` reproduces the whole pipeline, `make test` runs the test suite.
# Both create .venv and install the project with the versions pinned in requirements.lock.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# pip compiles every installed file to bytecode on one core (70 of the 124 s of the core install on a 2-core
# Xeon); installed with --no-compile, then compiled on every core (40 s). Files that are not Python 3.11
# (Kedro's project templates, torch's Python 3.12 test helpers) fail to compile here as under pip: ignored.
INSTALL := $(PIP) install --quiet --no-compile -c requirements.lock
COMPILE = $(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") src >/dev/null || true

# No telemetry from Kedro, DVC or MLflow.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(abspath $(BIN)):$(PATH)

CHROMIUM ?= /usr/bin/chromium
# PostgreSQL's server (initdb), for the team's MLflow server and its test: Debian's, else one on PATH.
POSTGRES ?= $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb) $(shell command -v initdb) \
                        /usr/lib/postgresql/15/bin/initdb)

.PHONY: run test bench install install-dev lock mlflow mlflow-server clean

run: $(VENV)/.installed
	dvc repro

# The rules first (style, then the layers of DESIGN.md), then the suite.
test: $(VENV)/.installed-dev $(CHROMIUM) $(POSTGRES)
	ruff check src tests
	lint-imports
	python -m pytest

# Speed figures: writes bench.json and appends a dated section to BENCHMARKS.md (about 25 min on a 2-core CPU).
# The ONNX Runtime engine comes with the `export` extra.
bench: $(VENV)/.installed-export
	superres bench

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-compile --upgrade "pip>=24"

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml requirements.lock
	$(INSTALL) -e .
	$(COMPILE)
	touch $@

$(VENV)/.installed-export: $(VENV)/.installed pyproject.toml requirements.lock
	$(INSTALL) -e ".[export]"
	$(COMPILE)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml requirements.lock
	$(INSTALL) -e ".[dev]"
	$(COMPILE)
	touch $@

# The web app's browser test drives Debian's Chromium with Playwright (whose own browser download needs
# the internet). Installed here when missing and we are root on Debian; otherwise that one test is skipped.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else echo "$@ is missing: install Debian's chromium package to run the web app's browser test"; fi

# The team's MLflow server runs on PostgreSQL (scripts/mlflow-server; tests/test_team.py). Installed here when
# missing and we are root on Debian; otherwise that test is skipped.
$(POSTGRES):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; \
	else echo "$@ is missing: install PostgreSQL's server (Debian: postgresql) for the team's MLflow server and its test"; fi

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
# The local build tag of torch (+cpu) is dropped, so the same pin takes the CUDA build on a GPU machine.
lock: $(VENV)/.installed-dev
	{ echo "# Exact versions of every dependency, used as pip constraints by the Makefile. Regenerate with \`make lock\`."; \
	  $(PIP) freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > requirements.lock

# The link opens MLflow's runs table (its UI starts on its GenAI views otherwise).
mlflow: $(VENV)/.installed
	@python -c "from superres.tracking import Tracker; \
	print('The runs: http://127.0.0.1:5000/#/experiments/%s?workflowType=machine_learning' \
	      % Tracker('sqlite:///mlflow.db').experiment_id)"
	mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

# The team's MLflow server (README, "Working as a team"): PostgreSQL and the artifacts in $(MLFLOW_SERVER_DIR),
# MLflow on 127.0.0.1:5000. Options: make mlflow-server MLFLOW_SERVER_ARGS="--host 0.0.0.0 --port 5000"
# (scripts/mlflow-server --help).
MLFLOW_SERVER_DIR ?= mlflow-server
mlflow-server: $(VENV)/.installed-team $(POSTGRES)
	scripts/mlflow-server --dir "$(MLFLOW_SERVER_DIR)" $(MLFLOW_SERVER_ARGS)

$(VENV)/.installed-team: $(VENV)/.installed pyproject.toml requirements.lock
	$(INSTALL) -e ".[team]"
	$(COMPILE)
	touch $@

clean:
	rm -rf $(VENV)
