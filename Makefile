# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER := /usr/bin/chromium
PYTEST_ARGS ?=
STACK ?= local

export ZENML_ANALYTICS_OPT_IN := false
export ZENML_LOGGING_COLORS_DISABLED := true

.PHONY: install demo test lint format clean

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

test: $(STAMP) $(BROWSER)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data .zen .pytest_cache test-output
