-- Crons: runs created on a schedule. Each enabled cron has one queue job (kind 'cron', lane 'cron:<id>')
-- due at its next_run_date; the worker that claims it creates that run and queues the next occurrence.
CREATE TABLE crons (
    cron_id          uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    assistant_id     uuid NOT NULL,
    thread_id        uuid REFERENCES threads ON DELETE CASCADE,  -- NULL: each run on a new thread
    schedule         text NOT NULL,
    timezone         text NOT NULL DEFAULT 'UTC',
    payload          jsonb NOT NULL DEFAULT '{}',  -- the run's body: input, config, context, stream_mode, ...
    metadata         jsonb NOT NULL DEFAULT '{}',
    on_run_completed text NOT NULL DEFAULT 'delete' CHECK (on_run_completed IN ('delete', 'keep')),
    enabled          boolean NOT NULL DEFAULT true,
    end_time         timestamptz,
    next_run_date    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crons_tenant ON crons (tenant_id, created_at);
