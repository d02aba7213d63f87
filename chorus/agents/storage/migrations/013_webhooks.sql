-- Run webhooks: one row per delivery of a run's completion to the URL its run named. The row and its queue
-- job (kind 'webhook', job_id = delivery_id) are written in the statement or transaction that records the
-- run's final status, so a crash cannot lose a delivery; the payload is the run as it ended (its thread may
-- be deleted before the delivery is sent). Attempts and the outcome are kept here; the job goes when the
-- delivery is delivered or given up.
CREATE TABLE webhook_deliveries (
    delivery_id      uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    run_id           uuid NOT NULL,  -- no foreign key: a run (and its thread) may be deleted, its delivery stays
    thread_id        uuid NOT NULL,
    event            text NOT NULL DEFAULT 'run.completed',
    url              text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_status_code integer,  -- the receiver's last HTTP status (NULL: no answer)
    last_error       text,
    next_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at DESC);
CREATE INDEX webhook_deliveries_run ON webhook_deliveries (run_id);
