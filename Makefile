# The two commands of the README, plus a few helpers.
PYTHON ?= python3
VENV := .venv

.PHONY: dev test lint format lock clean

$(VENV)/.installed: requirements.lock requirements-dev.lock requirements.in requirements-dev.in
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

## make lock: pin every package with its hashes again after editing requirements*.in.
lock:
	@PYTHON=$(PYTHON) bash scripts/lock.sh $(ARGS)

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-results
