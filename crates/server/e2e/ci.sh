#!/usr/bin/env bash
# The server's checks that need more than cargo: the workbench end to end in headless
# Chromium (Debian's `chromium`, driven by `playwright-core` from npm) and schemathesis (PyPI)
# against the OpenAPI document of a running `caseflow serve`. Installs are skipped when the
# tools are already there, and npm/pip use their caches.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../../.. && pwd)"
export CARGO_TERM_COLOR=never

echo "== server: installs (chromium, playwright-core, schemathesis)"
if ! [ -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
npm ci --no-audit --no-fund --prefer-offline --silent
if ! command -v st >/dev/null; then
    pip install -q "schemathesis==4.32.5"
fi

echo "== server: build the binary and the browser test's fixture"
(cd "$root" && cargo build -q -p caseflow-cli && cargo build -q -p caseflow-server --example e2e_fixture)
bin="$root/target/debug/caseflow"

echo "== server: workbench end to end in headless Chromium (screenshots in target/e2e)"
CASEFLOW_BIN="$bin" CASEFLOW_FIXTURE="$root/target/debug/examples/e2e_fixture" \
    CASEFLOW_E2E_OUT="$root/target/e2e" node --test

echo "== server: schemathesis against the OpenAPI document"
work="$(mktemp -d)"
"$bin" demo --db "$work/demo.db" --months 1 >/dev/null
echo "correct horse battery" | "$bin" user add auditor --auditor --db "$work/demo.db" --password-stdin
echo "correct horse battery" | "$bin" user add leader --unit room-1 --role leader --db "$work/demo.db" --password-stdin
auditor="$("$bin" user token auditor --db "$work/demo.db" 2>/dev/null)"
leader="$("$bin" user token leader --db "$work/demo.db" 2>/dev/null)"
port=$((20000 + RANDOM % 20000))
CASEFLOW_RATE_LIMIT_PER_MINUTE=1000000 CASEFLOW_RATE_LIMIT_BURST=100000 CASEFLOW_LOG=warn \
    "$bin" serve --db "$work/demo.db" --listen "127.0.0.1:$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
# The checks the issue asks for: no 5xx, and every response (status, content type, headers,
# body) as the document says. The coverage phase is skipped: schemathesis 4.32.5 fails inside
# Hypothesis on the free-form command body (a tool error, not a finding).
for token in "$auditor" "$leader"; do
    st --no-color run "http://127.0.0.1:$port/api/openapi.json" -H "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --phases examples,fuzzing,stateful --max-examples 50 --workers 2 --seed 20260302
done
kill "$server"
wait "$server" || true
trap - EXIT
