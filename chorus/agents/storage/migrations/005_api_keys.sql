-- Key management over HTTP: when a key was last used (updated at most once per auth cache window per
-- process, so auth stays cheap) and which admin key created it (NULL when made with the CLI).
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
ALTER TABLE api_keys ADD COLUMN created_by uuid REFERENCES api_keys ON DELETE SET NULL;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);
