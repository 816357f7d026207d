#!/usr/bin/env bash
# `make lock`: pin every package, transitive ones included, with the hashes of its files, from the
# top-level lists: requirements.in -> requirements.lock (what Heroku installs, through
# requirements.txt) and requirements-dev.in -> requirements-dev.lock (what make dev/test install).
# One universal resolution for Python 3.11 and newer on any platform. Current pins are kept
# unless asked: make lock ARGS=--upgrade, or ARGS="--upgrade-package flask".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
PYTHON=${PYTHON:-python3}

# uv comes from the current lock (a fresh clone has no .venv yet).
[ -x .venv/bin/uv ] || PYTHON=$PYTHON LOCKING=1 bash scripts/venv.sh

compile() {
  local source=$1 lock=$2
  shift 2
  say "uv pip compile $source -> $lock"
  .venv/bin/uv pip compile "$source" --output-file "$lock" --quiet --universal \
    --python-version 3.11 --generate-hashes --custom-compile-command "make lock" "$@"
}

compile requirements.in requirements.lock "$@"
# The runtime packages of the dev lock are exactly those of the runtime lock.
compile requirements-dev.in requirements-dev.lock --constraint requirements.lock "$@"

# Install what was just locked, as make dev/test would.
PYTHON=$PYTHON bash scripts/venv.sh
