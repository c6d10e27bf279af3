#!/usr/bin/env bash
# The live PostgreSQL tests (issue 13): the store contract suite, opening and leadership,
# the multi-process no-skip load test, >= 50 kill -9s, a server restart, the read-model
# contract and runner, and several engines (in one process and as separate processes, the
# watcher process killed) with one watcher. Needs root (pg_ctlcluster).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster_version="$(ls /etc/postgresql 2>/dev/null | head -n 1 || true)"
if [ -z "$cluster_version" ]; then
    echo "FAIL: no PostgreSQL cluster under /etc/postgresql (apt-get install postgresql)" >&2
    exit 1
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "PostgreSQL is not running; starting cluster $cluster_version/main"
    pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
fi
for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && break
    sleep 1
done
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null; then
    echo "FAIL: PostgreSQL at 127.0.0.1:5432 (user postgres, db test) cannot be reached" >&2
    exit 1
fi

export CASEFLOW_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432/test"
export CASEFLOW_PG_RESTART_CMD="pg_ctlcluster --skip-systemctl-redirect $cluster_version main restart"
export CASEFLOW_PG_KILLS="${CASEFLOW_PG_KILLS:-50}"
export CASEFLOW_PG_LOAD_SECS="${CASEFLOW_PG_LOAD_SECS:-8}"

cargo test -p caseflow-store --features postgres \
    --test contract_postgres --test postgres_open --test postgres_load
cargo test -p caseflow-store --features postgres --lib postgres
cargo test -p caseflow-projections --features postgres \
    --test read_model_store_postgres --test runner_postgres
cargo test -p caseflow --features postgres --test postgres_engines --test postgres_keys \
    --test postgres_engine_processes
