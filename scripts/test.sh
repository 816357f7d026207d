#!/usr/bin/env bash
# `make test`: services up (installed if missing), lint, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/broadcaster_test}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/14}

case "$TEST_DATABASE_URL" in
  *postgres:postgres@127.0.0.1:5432*) ensure_postgres; ensure_postgres_login ;;
  *127.0.0.1:5432*|*localhost:5432*) ensure_postgres ;;
esac
case "$TEST_REDIS_URL" in *127.0.0.1:6379*|*localhost:6379*) ensure_redis 6379 ;; esac
ensure_chromium

say "ruff"
.venv/bin/ruff format --check .
.venv/bin/ruff check .

say "pytest"
exec .venv/bin/python -m pytest "$@"
