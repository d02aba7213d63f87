-- The eval harness (issue 11, docs/evals.md): the seed's four tables (000 §1 "Conversation Evaluation
-- System"), tenant-scoped like every table, with what Chorus adds to them (a case's scripted turns,
-- assertions, repeat and mocked tool results; an execution's target config version and its verdict).

-- Evaluation suites (definitions).
CREATE TABLE eval_suites (
    id               bigserial PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name             varchar(255) NOT NULL,
    description      text,
    -- default_threshold, timeout_seconds, min_pass_rate (the suite's pass criterion, 0..1, default 1).
    evaluator_config jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- Individual test cases (evals).
CREATE TABLE evals (
    id                     bigserial PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    eval_suite_id          bigint NOT NULL REFERENCES eval_suites ON DELETE CASCADE,
    name                   varchar(255),
    evaluator_types        text[] NOT NULL DEFAULT '{}',
    expected_values        jsonb,
    user_input             text NOT NULL,
    -- Further scripted user turns after user_input, in the same conversation.
    turns                  jsonb NOT NULL DEFAULT '[]',
    conversation_context   jsonb,
    source_conversation_id varchar(255),
    vars                   jsonb NOT NULL DEFAULT '{}',
    assertions             jsonb NOT NULL DEFAULT '[]',
    threshold              double precision,
    repeat                 integer NOT NULL DEFAULT 1 CHECK (repeat BETWEEN 1 AND 100),
    -- tool name -> the result the tool returns in this case (set only by the eval runner, never by a client).
    tool_mocks             jsonb NOT NULL DEFAULT '{}',
    -- Set when a suite file imported again replaced the case: kept for the results that point at it.
    retired_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_evals_tenant_suite ON evals (tenant_id, eval_suite_id);

-- Suite executions (runtime tracking). Runs as a queue job of kind 'eval_execution' (job_id = job_id).
CREATE TABLE eval_suite_executions (
    id                   bigserial PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    eval_suite_id        bigint NOT NULL REFERENCES eval_suites ON DELETE CASCADE,
    name                 varchar(255),
    status               varchar(50) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    execution_percentage integer NOT NULL DEFAULT 0 CHECK (execution_percentage BETWEEN 0 AND 100),
    summary              jsonb,
    conversation_spec_id varchar(255),
    flow_name            varchar(255),
    job_id               uuid NOT NULL UNIQUE,
    -- The target: a stored config at a version, or a config body not uploaded (config_body; no version).
    config_id            uuid,
    config_version       integer,
    config_body          jsonb,
    batch_size           integer NOT NULL,
    max_concurrent       integer NOT NULL,
    -- The suite's verdict once completed (its pass criterion met); NULL until then, and when failed.
    passed               boolean,
    error                text,
    total_trials         integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    CHECK ((config_id IS NOT NULL AND config_version IS NOT NULL) <> (config_body IS NOT NULL))
);
CREATE INDEX idx_suite_executions_gate ON eval_suite_executions (tenant_id, config_id, config_version, eval_suite_id, id DESC);

-- Individual eval execution results: one row per case and trial (repeat N), written once, so an execution
-- resumed after a crash skips what is done. `result` = {score, passed, reasoning, system_response, evaluations,
-- tool_calls, latency_ms, tokens, turns}.
CREATE TABLE eval_executions (
    id                      bigserial PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    eval_suite_execution_id bigint NOT NULL REFERENCES eval_suite_executions ON DELETE CASCADE,
    eval_id                 bigint NOT NULL REFERENCES evals ON DELETE CASCADE,
    trial                   integer NOT NULL DEFAULT 1,
    evaluator_type          varchar(100) NOT NULL,
    status                  varchar(50) NOT NULL DEFAULT 'pending',
    result                  jsonb,
    created_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (eval_suite_execution_id, eval_id, trial)
);
CREATE INDEX idx_executions_tenant_suite ON eval_executions (tenant_id, eval_suite_execution_id);
CREATE INDEX idx_executions_eval ON eval_executions (eval_id);
