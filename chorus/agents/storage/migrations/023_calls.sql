-- Call records: one row per phone call a voice worker served (or refused): opened `in_progress` when the call
-- is routed, completed when it ends from what the call's parts recorded (chorus/voice/call_facts.py); one
-- left in progress by a worker that died is closed `failed` by the servers' sweep. tenant_id is NULL for a call no voicebot
-- answered (outcome no_config): such a row belongs to no tenant, so no API key ever reads it; the worker logs
-- it and operators read it in the database. No foreign key to the config or the thread: a call's record
-- outlives the deletion of its bot and the expiry of its thread.
CREATE TABLE calls (
    call_id           uuid PRIMARY KEY,  -- also the id of the call's thread
    tenant_id         uuid REFERENCES tenants ON DELETE CASCADE,
    direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    caller_number     text,
    dialed_number     text,
    assistant_id      uuid,
    config_key        text,  -- config_metadata.config_id
    config_version    integer,
    environment       text,
    room              text,
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,  -- NULL while in progress
    duration_s        double precision,
    outcome           text NOT NULL CHECK (
        outcome IN ('in_progress', 'completed', 'transferred', 'escalated', 'voicemail', 'failed', 'no_config')),
    failure           text,
    transcript        jsonb NOT NULL DEFAULT '[]',  -- [{role, text, interrupted, at}] as the caller heard it
    turns             jsonb NOT NULL DEFAULT '[]',  -- per-turn latency metrics from LiveKit
    facts             jsonb NOT NULL DEFAULT '{}',  -- transfer, voicemail, dtmf, recording
    analysis          jsonb,  -- post-call analysis: summary, structured_data, success_evaluation (or error)
    analysis_status   text NOT NULL DEFAULT 'none' CHECK (analysis_status IN ('none', 'pending', 'done', 'error')),
    recording_delete_after timestamptz,  -- when the retention sweep deletes the recording (NULL: none kept)
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((tenant_id IS NULL) = (outcome = 'no_config')),
    CHECK ((outcome = 'in_progress') = (ended_at IS NULL))
);
CREATE INDEX calls_in_progress ON calls (started_at) WHERE outcome = 'in_progress';
CREATE INDEX calls_tenant_time ON calls (tenant_id, started_at DESC, call_id);
CREATE INDEX calls_tenant_assistant ON calls (tenant_id, assistant_id, started_at DESC);
CREATE INDEX calls_tenant_config_key ON calls (tenant_id, config_key, started_at DESC);
CREATE INDEX calls_tenant_outcome ON calls (tenant_id, outcome, started_at DESC);
CREATE INDEX calls_recording_expiry ON calls (recording_delete_after) WHERE recording_delete_after IS NOT NULL;

-- Post-call webhooks (event call.ended) use the run webhooks' deliveries: such a delivery has no run.
ALTER TABLE webhook_deliveries ALTER COLUMN run_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN call_id uuid;
CREATE INDEX webhook_deliveries_call ON webhook_deliveries (call_id) WHERE call_id IS NOT NULL;
