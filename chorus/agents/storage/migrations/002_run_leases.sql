-- Which server process runs a thread's turn right now, until when: turns of one thread never overlap,
-- even with several server processes on one database; a dead process's lease simply expires.
ALTER TABLE threads ADD COLUMN run_owner text;
ALTER TABLE threads ADD COLUMN run_lease_until timestamptz;
