#!/usr/bin/env bash
# Create .venv (installing Debian's python3-venv first when it is missing) and install the pinned
# requirements. Called by the Makefile whenever a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))."

if [ ! -x .venv/bin/pip ]; then
  rm -rf .venv  # a half-made venv (no pip) would fail every later step
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3-venv || die "'$PYTHON -m venv' failed: install python3-venv (apt-get install python3-venv)."
    "$PYTHON" -m venv .venv
  fi
fi
say "installing the pinned requirements into .venv"
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -r requirements-dev.txt
touch .venv/.installed
