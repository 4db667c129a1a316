# superres: `make run` reproduces the whole pipeline, `make test` runs the test suite.
# Both create .venv and install the project with the versions pinned in requirements.lock.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

# No telemetry from Kedro, DVC or MLflow.
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(abspath $(BIN)):$(PATH)

CHROMIUM ?= /usr/bin/chromium

.PHONY: run test bench install install-dev lock mlflow clean

run: $(VENV)/.installed
	dvc repro

# The rules first (style, then the layers of DESIGN.md), then the suite.
test: $(VENV)/.installed-dev $(CHROMIUM)
	ruff check src tests
	lint-imports
	python -m pytest

# Speed figures: writes bench.json and appends a dated section to BENCHMARKS.md (about 25 min on a 2-core CPU).
bench: $(VENV)/.installed
	superres bench

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml requirements.lock
	$(PIP) install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml requirements.lock
	$(PIP) install --quiet -c requirements.lock -e ".[dev]"
	touch $@

# The web app's browser test drives Debian's Chromium with Playwright (whose own browser download needs
# the internet). Installed here when missing and we are root on Debian; otherwise that one test is skipped.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else echo "$@ is missing: install Debian's chromium package to run the web app's browser test"; fi

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
# The local build tag of torch (+cpu) is dropped, so the same pin takes the CUDA build on a GPU machine.
lock: $(VENV)/.installed-dev
	{ echo "# Exact versions of every dependency, used as pip constraints by the Makefile. Regenerate with \`make lock\`."; \
	  $(PIP) freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > requirements.lock

mlflow: $(VENV)/.installed
	mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf $(VENV)
