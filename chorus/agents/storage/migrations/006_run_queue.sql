-- One Postgres queue for every background job: chat runs, knowledge ingestion, later evals, crons and
-- webhooks. A row lives while its job is queued or running and is deleted when the job ends (the
-- domain table — runs, kb_jobs — keeps the outcome), so the table stays small and claims stay cheap.
CREATE TABLE queue_jobs (
    job_id       uuid PRIMARY KEY,
    seq          bigserial NOT NULL,
    tenant_id    uuid REFERENCES tenants ON DELETE CASCADE,
    kind         text NOT NULL,
    -- Jobs that share a lane run one at a time, oldest first (a thread's runs).
    lane         text,
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    worker       text,
    lease_until  timestamptz,
    -- A cancel asked for while the job runs ('interrupt' | 'rollback'); the worker holding it acts.
    cancel       text,
    run_after    timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_jobs_ready ON queue_jobs (kind, seq) WHERE status = 'queued';
CREATE INDEX queue_jobs_lane ON queue_jobs (lane, seq);
CREATE UNIQUE INDEX queue_jobs_one_running_per_lane ON queue_jobs (lane) WHERE status = 'running';
CREATE INDEX queue_jobs_leases ON queue_jobs (lease_until) WHERE status = 'running';
CREATE INDEX queue_jobs_worker ON queue_jobs (worker) WHERE status = 'running';

-- Thread leases are replaced by the queue: the running job of a thread's lane holds it.
ALTER TABLE threads DROP COLUMN run_owner;
ALTER TABLE threads DROP COLUMN run_lease_until;

-- At most once per tool call: a side-effecting tool's call is recorded before it runs and its result
-- after; a retried turn reuses the result instead of calling again.
CREATE TABLE tool_calls (
    tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    thread_id    uuid NOT NULL,
    tool_call_id text NOT NULL,
    tool_name    text NOT NULL,
    run_id       uuid,
    status       text NOT NULL CHECK (status IN ('started', 'succeeded', 'failed')),
    result       jsonb,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (thread_id, tool_call_id)
);
