# The two commands of the README: `make run` (server + embedded Postgres + example bots) and `make test`.
# Both bootstrap uv and the locked environment on a fresh machine.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test lint typecheck pytest bench fuzz env

env:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: env
	@if [ -z "$$OPENAI_API_KEY" ]; then \
	  echo "make run: OPENAI_API_KEY is not set, so the server runs OFFLINE on purpose (offline development model)"; \
	  CHORUS_OFFLINE=1 $(UV) run --frozen chorus serve --demo --host $(HOST) --port $(PORT); \
	else \
	  $(UV) run --frozen chorus serve --demo --host $(HOST) --port $(PORT); \
	fi

lint: env
	$(UV) run --frozen ruff check chorus tests bench
	$(UV) run --frozen ruff format --check chorus tests bench

typecheck: env
	$(UV) run --frozen mypy

pytest: env
	@./scripts/ensure-chromium.sh
	@./scripts/ensure-espeak-ng.sh
	$(UV) run --frozen pytest -q

test: lint typecheck pytest

# BENCH_ARGS: e.g. --tiny (the smoke test's sizes), --only turn_overhead,storage
bench: env
	$(UV) run --frozen python -m bench.run_all $(BENCH_ARGS)

fuzz: env
	UV="$(UV)" ./scripts/fuzz-api.sh
