-- Knowledge jobs (ingestion, FAQ import, re-embed) run on the one job queue (queue_jobs, kind
-- 'knowledge'): its leases replace kb_jobs' heartbeat, and a job's input is stored with it, so any
-- process can run it and a job whose process died runs again.
ALTER TABLE kb_jobs DROP COLUMN heartbeat_at;  -- and its index kb_jobs_active

-- What a queued or running job needs to run: the document's text or file bytes and the request's
-- parameters. Written with the job when the API accepts it (202), deleted when the job ends.
CREATE TABLE kb_job_inputs (
    job_id     uuid PRIMARY KEY REFERENCES kb_jobs ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    params     jsonb NOT NULL DEFAULT '{}',
    data       bytea NOT NULL DEFAULT ''
);

-- Jobs of the in-process runner this replaces kept their input in memory: they cannot run again.
UPDATE kb_jobs SET status = 'failed', completed_at = now(),
    error = 'the server was upgraded before this job finished; submit it again'
WHERE status IN ('queued', 'processing');
