-- The embeddable widget: publishable keys (one tenant, some of its chatbots, the web origins that may use
-- the key, rate limits per key and per visitor), and the rate-limit counters every server process shares.
CREATE TABLE publishable_keys (
    key_id                       uuid PRIMARY KEY,
    tenant_id                    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    key_hash                     text NOT NULL UNIQUE,
    prefix                       text NOT NULL,
    name                         text,
    assistant_ids                uuid[] NOT NULL CHECK (cardinality(assistant_ids) > 0),
    allowed_origins              text[] NOT NULL,
    allow_no_origin              boolean NOT NULL DEFAULT false,
    key_requests_per_minute      integer NOT NULL CHECK (key_requests_per_minute > 0),
    visitor_requests_per_minute  integer NOT NULL CHECK (visitor_requests_per_minute > 0),
    created_at                   timestamptz NOT NULL DEFAULT now(),
    created_by                   uuid REFERENCES api_keys ON DELETE SET NULL,
    revoked_at                   timestamptz
);
CREATE INDEX publishable_keys_tenant ON publishable_keys (tenant_id, created_at DESC);

-- Fixed one-minute windows, one row per (bucket, window): a request is one upsert. UNLOGGED: counters
-- need no WAL and may be lost in a crash (the worst case is a fresh window). Old windows are pruned.
CREATE UNLOGGED TABLE rate_limit_windows (
    bucket        text NOT NULL,
    window_start  bigint NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_windows_start ON rate_limit_windows (window_start);
