#!/usr/bin/env bash
# Fuzz every endpoint of the OpenAPI document with schemathesis (from the locked dev group): no request may
# answer 5xx. Starts its own server on a throwaway CHORUS_HOME. Works where `uv` is not on PATH (UV, as the
# Makefile sets it, or `python3 -m uv`). FUZZ_EXAMPLES (per operation), FUZZ_SEED, FUZZ_PORT, FUZZ_PHASES.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${UV:-}" ]; then
  if command -v uv >/dev/null 2>&1; then UV=uv; else UV="python3 -m uv"; fi
fi
home=$(mktemp -d)
port=${FUZZ_PORT:-8099}
CHORUS_HOME="$home" CHORUS_OFFLINE=1 CHORUS_LOG_LEVEL=ERROR $UV run --frozen chorus serve --demo --port "$port" \
  >"$home/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$home"' EXIT
# --demo loads the example bots and knowledge before the server listens: up to a few minutes on 2 busy cores.
for i in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "fuzz: the server stopped:"; cat "$home/server.log"; exit 1; }
  [ "$i" = 600 ] && { echo "fuzz: the server did not answer /health within 5 minutes"; exit 1; }
  sleep 0.5
done
seed_args=()
[ -n "${FUZZ_SEED:-}" ] && seed_args=(--seed "$FUZZ_SEED")
$UV run --frozen schemathesis run "http://127.0.0.1:$port/openapi.json" \
  -H "X-Api-Key: $(cat "$home/demo_api_key")" --checks not_a_server_error \
  --max-examples "${FUZZ_EXAMPLES:-30}" --workers 1 --suppress-health-check all --phases "${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}" \
  --generation-database none --request-timeout 30 "${seed_args[@]}" \
  || { echo "fuzz: failures above; the server log: $home/server.log"; tail -50 "$home/server.log"; exit 1; }
