-- The credential vault (seed 001 §7): per-tenant secrets, every version kept encrypted (AES-256-GCM, the
-- tenant, name and version bound as associated data), and an audit trail that outlives deleted secrets.
CREATE TABLE secrets (
    secret_id       uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    description     text,
    latest_version  integer NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE secret_versions (
    secret_id   uuid NOT NULL REFERENCES secrets ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    key_id      text NOT NULL,          -- fingerprint of the key that sealed it (never the key)
    reason      text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (secret_id, version)
);

CREATE TABLE secret_audit (
    audit_id      uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    secret_name   text NOT NULL,         -- '*' for a listing of every name
    version       integer,
    action        text NOT NULL CHECK (action IN ('create', 'list', 'read', 'rotate', 'delete', 'use', 'use_failed')),
    actor         text NOT NULL,         -- 'key:<key_id>', 'cli:<user>' or 'run:<run_id>' / 'thread:<thread_id>'
    thread_id     text,
    run_id        text,
    tool_name     text,
    tool_call_id  text,
    detail        text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX secret_audit_name ON secret_audit (tenant_id, secret_name, created_at DESC);
