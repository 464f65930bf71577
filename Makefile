# Outpost Lifeline: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# `make run PORT=8080` (or LIFELINE_PORT=8080 in the environment): the dashboard's port.
PORT ?=
RUN_ENV := $(if $(PORT),LIFELINE_PORT=$(PORT))

.PHONY: install test-deps run serve demo migrate test lint fmt bench clean screenshots

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# The SSO tests run a real OpenID provider (oidc-provider) with the machine's Node.
OIDC_DIR := tests/support/oidc
$(OIDC_DIR)/node_modules/.package-lock.json: $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json
	cd $(OIDC_DIR) && npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP)

# Test-only npm packages with the machine's Node: axe-core (accessibility) and oidc-provider (SSO).
AXE := tests/js/node_modules/axe-core/axe.min.js
$(AXE): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent
	@touch $(AXE)

test-deps: $(AXE) $(OIDC_DIR)/node_modules/.package-lock.json

# Starts the dashboard at http://127.0.0.1:8000 (PORT=N for another port). With no AWS configured
# it starts the demo fleet.
run: install
	@if $(BIN)/python -m app.aws_configured; then \
		$(BIN)/lifeline migrate && $(RUN_ENV) $(BIN)/lifeline serve; \
	else \
		echo "No AWS configuration found: starting the demo fleet."; \
		$(RUN_ENV) $(BIN)/lifeline demo start; \
	fi

serve: install
	$(BIN)/lifeline migrate && $(RUN_ENV) $(BIN)/lifeline serve

demo: install
	$(RUN_ENV) $(BIN)/lifeline demo start

migrate: install
	$(BIN)/lifeline migrate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install test-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Rewrites the screenshot references (tests/web/pages/screenshots/*.png) from this checkout's pages;
# CI=true so a missing chromium fails instead of skipping without writing anything.
screenshots: install
	CI=true LIFELINE_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/pages/test_screenshots.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache lifeline.db*
