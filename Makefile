# The two commands of the README, plus a few helpers.
PYTHON ?= python3
VENV := .venv

.PHONY: dev test lint format clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || \
		(echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

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
