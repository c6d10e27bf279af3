#!/usr/bin/env bash
# The HTTP benchmarks of docs/benchmarks.md ("HTTP server"): wrk (Debian's `wrk`) and the
# live-feed load generator run as processes of their own next to `caseflow serve`, release
# build, SQLite with synchronous=NORMAL.
#
#   bash crates/server/benches/run.sh [CASES] [SECONDS]     (defaults: 100000 cases, 20 s)
#
# 1. bench_store writes CASES open cases (each waiting for its intake decision) and three
#    token users; 2. serve it; 3. GET a unit's to-do list (the first page, 50 items) as the
#    room leader, whose list holds every case; 4. POST new reports (a command each, with its
#    own Idempotency-Key); 5. 1,000 live-feed connections that must each see 100 changes.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cases="${1:-100000}"
seconds="${2:-20}"
work="${BENCH_DIR:-target/http-bench}"
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
cargo build -q --release -p caseflow-cli -p caseflow-server --example bench_store --example sse_load
bin=target/release/caseflow
echo "== store: $cases open cases"
/usr/bin/time -f "%e s, %M KiB max RSS" target/release/examples/bench_store "$work" "$cases"
set -a; . "$work/tokens.env"; set +a
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
CASEFLOW_DURABILITY=normal CASEFLOW_LOG=warn CASEFLOW_WATCHER_INTERVAL_SECONDS=0 \
    CASEFLOW_RATE_LIMIT_PER_MINUTE=100000000 CASEFLOW_RATE_LIMIT_BURST=1000000 \
    "$bin" serve --db "$work/bench.db" --listen "127.0.0.1:$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
started=$(date +%s.%N)
curl -sf --retry 600 --retry-connrefused --retry-delay 1 --retry-all-errors -o /dev/null "$url/readyz"
echo "== ready after $(echo "$(date +%s.%N) - $started" | bc) s (read models caught up)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -sf -H "Authorization: Bearer $LEADER_TOKEN" "$url/api/v1/todo/mine?limit=1" \
    | python3 -c 'import json, sys; v = json.load(sys.stdin); print("room-1 list:", v["total"], "items")'
echo "== GET /api/v1/todo/mine (room leader), wrk -t2 -c32 -d${seconds}s"
TOKEN="$LEADER_TOKEN" wrk -t2 -c32 -d"${seconds}s" --latency -s crates/server/benches/get.lua "$url/api/v1/todo/mine"
echo "== POST /api/v1/cases (reports, NORMAL), wrk -t2 -c64 -d${seconds}s"
TOKEN="$OFFICER_TOKEN" wrk -t2 -c64 -d"${seconds}s" --latency -s crates/server/benches/report.lua "$url"
echo "== live feed: 1000 connections, 100 reports"
target/release/examples/sse_load "127.0.0.1:$port" "$AUDITOR_TOKEN" 1000 100 "$OFFICER_TOKEN" "$server"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
