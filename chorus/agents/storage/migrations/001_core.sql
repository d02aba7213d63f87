-- Tenants, API keys, bot configs (assistants) and their versions, threads, runs, audit and usage.
CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id      uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,
    prefix      text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE bot_configs (
    config_id       uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name            text NOT NULL,
    description     text,
    product_type    text NOT NULL CHECK (product_type IN ('chatbot', 'voicebot')),
    latest_version  integer NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_configs_tenant ON bot_configs (tenant_id, updated_at DESC);

CREATE TABLE bot_config_versions (
    config_id       uuid NOT NULL REFERENCES bot_configs ON DELETE CASCADE,
    version         integer NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    config          jsonb NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    commit_message  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (config_id, version)
);

CREATE TABLE threads (
    thread_id       uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    assistant_id    uuid REFERENCES bot_configs ON DELETE SET NULL,
    config_version  integer,
    status          text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    metadata        jsonb NOT NULL DEFAULT '{}',
    "values"        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz
);
CREATE INDEX threads_tenant ON threads (tenant_id, updated_at DESC);
CREATE INDEX threads_expiry ON threads (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE runs (
    run_id              uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    thread_id           uuid NOT NULL REFERENCES threads ON DELETE CASCADE,
    assistant_id        uuid NOT NULL,
    config_version      integer NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'running', 'error', 'success', 'timeout', 'interrupted')),
    multitask_strategy  text NOT NULL,
    kwargs              jsonb NOT NULL DEFAULT '{}',
    metadata            jsonb NOT NULL DEFAULT '{}',
    error               text,
    checkpoint_before   text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_thread ON runs (thread_id, created_at DESC);

CREATE TABLE tool_invocations (
    invocation_id   uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    tool_name       text NOT NULL,
    thread_id       uuid,
    run_id          uuid,
    source          text NOT NULL CHECK (source IN ('api', 'graph')),
    arguments       jsonb NOT NULL,
    ok              boolean NOT NULL,
    result          jsonb,
    error           text,
    duration_ms     double precision NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tool_invocations_tenant ON tool_invocations (tenant_id, created_at DESC);

CREATE TABLE token_usage (
    usage_id        bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    run_id          uuid,
    thread_id       uuid,
    model           text NOT NULL,
    input_tokens    integer NOT NULL,
    output_tokens   integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_usage_tenant ON token_usage (tenant_id, created_at DESC);

-- Demo commerce data the built-in order tools work against, per tenant.
CREATE TABLE demo_orders (
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    order_id         text NOT NULL,
    customer_email   text NOT NULL,
    status           text NOT NULL,
    items            jsonb NOT NULL,
    total            numeric(10, 2) NOT NULL,
    carrier          text,
    tracking_number  text,
    shipping_address text NOT NULL,
    placed_at        date NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);

CREATE TABLE demo_refunds (
    refund_id    text PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    order_id     text NOT NULL,
    amount       numeric(10, 2) NOT NULL,
    reason       text NOT NULL,
    status       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE demo_appointments (
    appointment_id  text PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    patient_name    text NOT NULL,
    starts_at       timestamp NOT NULL,
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, starts_at)
);
