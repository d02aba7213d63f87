-- A thread's own time-to-live (the Agent Server's `ttl` on create and update), in minutes of inactivity:
-- each run, state update or new ttl sets expires_at to now() + ttl_minutes. Threads without one follow
-- CHORUS_THREAD_TTL_DAYS. The sweep (runs/expiry.py) reads only expires_at.
ALTER TABLE threads ADD COLUMN ttl_minutes double precision CHECK (ttl_minutes > 0);

-- When the thread's state last changed (a run's end, a state update), as opposed to its metadata: the
-- Agent Server's `state_updated_at`, which threads can be sorted by.
ALTER TABLE threads ADD COLUMN state_updated_at timestamptz;
UPDATE threads SET state_updated_at = updated_at;
ALTER TABLE threads ALTER COLUMN state_updated_at SET DEFAULT now();
ALTER TABLE threads ALTER COLUMN state_updated_at SET NOT NULL;
