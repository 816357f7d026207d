#!/usr/bin/env bash
# `make dev`: migrate the SQLite database in instance/, seed demo data, and run web + worker +
# scheduler with honcho on http://localhost:5000 using the simulator transport.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
mkdir -p instance

export FLASK_APP=app
export TRANSPORT=${TRANSPORT:-simulator}

redis_answers() {
  .venv/bin/python - "$1" <<'PY'
import sys
from redis import Redis
try:
    Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

if [ -n "${REDIS_URL:-}" ]; then
  redis_answers "$REDIS_URL" || die "REDIS_URL=$REDIS_URL does not answer. Start that Redis, or unset REDIS_URL."
else
  export REDIS_URL=redis://127.0.0.1:6379/0
  if ! redis_answers "$REDIS_URL"; then
    if command -v redis-server >/dev/null 2>&1; then
      say "no Redis on 127.0.0.1:6379: starting a private redis-server (data in instance/)"
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir "$PWD/instance" --logfile "$PWD/instance/redis.log" --pidfile "$PWD/instance/redis.pid"
      wait_port 127.0.0.1 6379 || die "redis-server did not start; see instance/redis.log"
    else
      die "Broadcaster needs Redis for its workers. Install it (Debian/Ubuntu: sudo apt-get install redis-server;
    macOS: brew install redis) or point REDIS_URL at one, then run make dev again."
    fi
  fi
fi

say "migrating the database"
.venv/bin/flask db upgrade
say "seeding demo data"
.venv/bin/flask seed-demo

cat > instance/Procfile.dev <<PROCS
web: .venv/bin/flask run --host 127.0.0.1 --port 5000 --debug
worker: .venv/bin/python worker.py worker
scheduler: .venv/bin/python worker.py scheduler
PROCS
say "Broadcaster is starting on http://localhost:5000 (Ctrl-C stops it)"
exec .venv/bin/honcho -f instance/Procfile.dev -d . start
