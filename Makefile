# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER := /usr/bin/chromium
PYTEST_ARGS ?=
# make test runs the tests on two workers (pytest-xdist); TEST_WORKERS=0 runs them in one process
TEST_WORKERS ?= 2
STACK ?= local

export ZENML_ANALYTICS_OPT_IN := false
export ZENML_LOGGING_COLORS_DISABLED := true

.PHONY: install demo test test-fast lint format clean containers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser).
$(BROWSER):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zenloop demo --stack $(STACK)

# The container tests need a Docker daemon (Debian's docker.io, started in the background
# when none answers), docker-compose (Debian's, for docker/compose.yaml), the base image
# (built from Debian packages, about 2 minutes, once) and uv (MLflow's env manager for
# `mlflow models serve`).
DOCKERD := /usr/sbin/dockerd
COMPOSE := /usr/bin/docker-compose
$(DOCKERD):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null

$(COMPOSE):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null

containers: $(STAMP) $(DOCKERD) $(COMPOSE)
	docker info >/dev/null 2>&1 || { nohup $(DOCKERD) >/var/log/dockerd.log 2>&1 & \
		for i in $$(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done; }
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	scripts/base-image.sh

test: $(STAMP) $(BROWSER) containers
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The unit tests only: in process, no root, no OS packages, no daemons.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data .zen .pytest_cache test-output
