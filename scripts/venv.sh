#!/usr/bin/env bash
# Create .venv (installing Debian's python3-venv first when it is missing) and install
# requirements-dev.lock: every package pinned, each file checked against its hash. Called by the
# Makefile whenever a requirements file changed.
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

# A top-level pin that the lock does not hold means requirements*.in changed without `make lock`
# (which skips this check while it installs the old lock to get uv).
[ "${LOCKING:-0}" = 1 ] || "$PYTHON" - <<'PY' || die "requirements.in or requirements-dev.in changed since the lock was made: run make lock"
import re
import sys

def pins(path, top_level):
    found = {}
    for line in open(path, encoding="utf-8"):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if match and (top_level or not line.startswith(" ")):
            found.setdefault(re.sub(r"[-_.]+", "-", match[1]).lower(), set()).add(match[3])
    return found

stale = False
for source, lock in (("requirements.in", "requirements.lock"), ("requirements-dev.in", "requirements-dev.lock")):
    locked = pins(lock, top_level=False)
    for name, versions in pins(source, top_level=True).items():
        if not versions <= locked.get(name, set()):
            print(f"{source} pins {name}=={versions.pop()}, {lock} does not", file=sys.stderr)
            stale = True
sys.exit(stale)
PY

say "installing requirements-dev.lock into .venv"
# --no-deps: the lock already lists every package; pip check then proves nothing is missing.
.venv/bin/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
.venv/bin/pip check
[ "${LOCKING:-0}" = 1 ] || touch .venv/.installed
