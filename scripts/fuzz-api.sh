#!/usr/bin/env bash
# Fuzz every endpoint of the OpenAPI document with schemathesis: no request may answer 500.
# Starts its own server on a throwaway CHORUS_HOME; needs network access to PyPI once (uvx).
set -euo pipefail
cd "$(dirname "$0")/.."
home=$(mktemp -d)
port=${FUZZ_PORT:-8099}
CHORUS_HOME="$home" CHORUS_OFFLINE=1 CHORUS_LOG_LEVEL=ERROR uv run --frozen chorus serve --demo --port "$port" >"$home/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$home"' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.5
done
uvx --quiet schemathesis run "http://127.0.0.1:$port/openapi.json" -H "X-Api-Key: $(cat "$home/demo_api_key")" \
  --checks not_a_server_error --max-examples "${FUZZ_EXAMPLES:-30}" --workers 2
