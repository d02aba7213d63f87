-- A config file's `config_metadata.config_id` is its identity within its tenant (`config_key`): uploading
-- the file again appends a version to the same bot. `config_id` stays the assistant's UUID (threads, runs and
-- the graph cache refer to it); two tenants may use the same key without either knowing.
ALTER TABLE bot_configs ADD COLUMN config_key text;
-- Before, Chorus replaced the file's id with the UUID it stored: that UUID is the key of those configs.
UPDATE bot_configs SET config_key = config_id::text;
ALTER TABLE bot_configs ALTER COLUMN config_key SET NOT NULL;
-- A deleted config keeps its key for the threads pinned to it; a new upload of that id makes a new bot.
CREATE UNIQUE INDEX bot_configs_tenant_key ON bot_configs (tenant_id, config_key) WHERE deleted_at IS NULL;

-- Every version records how it was made and by whom: an API key (its name and role at that moment) or the
-- CLI. Versions made before this have no author and count as uploads.
ALTER TABLE bot_config_versions
    ADD COLUMN source text NOT NULL DEFAULT 'upload'
        CHECK (source IN ('upload', 'apply', 'patch', 'visual_update', 'chat', 'rollback')),
    ADD COLUMN author_kind text CHECK (author_kind IN ('api_key', 'cli')),
    ADD COLUMN author_key_id uuid,
    ADD COLUMN author_name text,
    ADD COLUMN author_role text,
    ADD COLUMN rolled_back_to integer;
ALTER TABLE bot_config_versions ALTER COLUMN source DROP DEFAULT;
