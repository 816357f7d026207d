# The two commands of the README, plus a few helpers.
PYTHON ?= python3
VENV := .venv

.PHONY: dev test lint format clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@PYTHON=$(PYTHON) bash scripts/venv.sh

## make dev: the app with demo data on http://localhost:5000 (SQLite, simulator transport).
dev: $(VENV)/.installed
	@bash scripts/dev.sh

## make test: lint and every test (PostgreSQL and Redis installed/started when needed).
test: $(VENV)/.installed
	@bash scripts/test.sh $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-results
