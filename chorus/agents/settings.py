"""Process settings, read once from the environment (CHORUS_*, DATABASE_URL)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(os.environ.get("CHORUS_HOME", ".chorus")).resolve())
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    offline: bool = field(default_factory=lambda: _flag("CHORUS_OFFLINE"))
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("CHORUS_MAX_BODY_BYTES", str(1024 * 1024))))
    thread_ttl_days: float | None = field(
        default_factory=lambda: float(v) if (v := os.environ.get("CHORUS_THREAD_TTL_DAYS")) else None
    )
    pool_max_size: int = field(default_factory=lambda: int(os.environ.get("CHORUS_DB_POOL_SIZE", "20")))
    # How long a request waits for a database connection before it answers 503 (also the connect timeout).
    db_timeout_s: float = field(default_factory=lambda: float(os.environ.get("CHORUS_DB_TIMEOUT_SECONDS", "1.5")))
    run_timeout_s: float = field(default_factory=lambda: float(os.environ.get("CHORUS_RUN_TIMEOUT_SECONDS", "300")))
    upload_max_bytes: int = field(
        default_factory=lambda: int(os.environ.get("CHORUS_UPLOAD_MAX_BYTES", str(20 * 1024 * 1024)))
    )
    # Runs one server process executes at once (more wait in the queue for any process).
    max_runs: int = field(default_factory=lambda: int(os.environ.get("CHORUS_MAX_RUNS", "200")))
    # At shutdown, how long running turns may take to finish before they are handed to another process.
    drain_seconds: float = field(default_factory=lambda: float(os.environ.get("CHORUS_DRAIN_SECONDS", "10")))
    log_level: str = field(default_factory=lambda: os.environ.get("CHORUS_LOG_LEVEL", "INFO"))
    # The vault key: 32 bytes, base64. Unset: a key generated into $CHORUS_HOME/secret.key (development).
    secret_key: str | None = field(default_factory=lambda: os.environ.get("CHORUS_SECRET_KEY") or None, repr=False)
    # API requests per minute per tenant, counted across every server process (0: no limit). The widget API
    # has its own limits, per publishable key and per visitor, set on each key.
    rate_limit_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("CHORUS_RATE_LIMIT_PER_MINUTE", "1000"))
    )
    # Browser origins allowed to call the API (comma-separated, * for any); see chorus/cors.py.
    cors_origins: str = field(
        default_factory=lambda: os.environ.get("CHORUS_CORS_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000")
    )


def load_settings() -> Settings:
    return Settings()
