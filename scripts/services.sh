#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start them if they are installed but stopped.
set -uo pipefail
PG_HOST=${WECRM_TEST_PG_HOST:-127.0.0.1}
REDIS_HOST=${WECRM_TEST_REDIS_HOST:-127.0.0.1}
missing=()

pg_up() { pg_isready -q -h "$PG_HOST" -p 5432 2>/dev/null || (exec 3<>/dev/tcp/"$PG_HOST"/5432) 2>/dev/null; }
redis_up() { redis-cli -h "$REDIS_HOST" ping 2>/dev/null | grep -q PONG || (exec 3<>/dev/tcp/"$REDIS_HOST"/6379) 2>/dev/null; }

wait_for() {  # name check-function
  for _ in $(seq 1 30); do "$2" && return 0; sleep 0.5; done
  return 1
}

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_for postgresql pg_up || missing+=("PostgreSQL (started, but it does not answer on $PG_HOST:5432)")
  else
    missing+=("PostgreSQL on $PG_HOST:5432 (not installed here: apt-get install postgresql, or set WECRM_TEST_PG_ADMIN_URL)")
  fi
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    wait_for redis redis_up || missing+=("Redis (started, but it does not answer on $REDIS_HOST:6379)")
  else
    missing+=("Redis on $REDIS_HOST:6379 (not installed here: apt-get install redis-server, or set WECRM_TEST_REDIS_URL)")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "The tests need real services that are not available:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi
