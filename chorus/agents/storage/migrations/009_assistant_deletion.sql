-- Deleting an assistant hides it (search, get, new runs) but keeps its versions while threads talk to it:
-- their state and history are read through the config version they are pinned to, and they can go on
-- with another assistant. The config is removed for good once nothing refers to it.
ALTER TABLE bot_configs ADD COLUMN deleted_at timestamptz;

-- Before, deleting a config set its threads' assistant to NULL and left them without state or history.
-- Now a config that a thread refers to cannot be removed (checked at the end of the statement, so deleting
-- a tenant still removes both).
ALTER TABLE threads DROP CONSTRAINT threads_assistant_id_fkey;
ALTER TABLE threads ADD CONSTRAINT threads_assistant_id_fkey FOREIGN KEY (assistant_id) REFERENCES bot_configs;
-- Finding an assistant's threads (deleting it, or checking nothing refers to it).
CREATE INDEX threads_assistant ON threads (assistant_id);
