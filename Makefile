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

.PHONY: run test install install-dev lock mlflow clean

run: $(VENV)/.installed
	dvc repro

test: $(VENV)/.installed-dev
	python -m pytest

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

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
# The local build tag of torch (+cpu) is dropped, so the same pin takes the CUDA build on a GPU machine.
lock: $(VENV)/.installed-dev
	{ echo "# Exact versions of every dependency, used as pip constraints by the Makefile. Regenerate with \`make lock\`."; \
	  $(PIP) freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > requirements.lock

mlflow: $(VENV)/.installed
	mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf $(VENV)
