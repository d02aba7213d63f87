-- GitOps apply (`chorus config apply`, POST /api/v1/configs/apply) records the file each applied version came
-- from (its path relative to the directory applied), so that a file which was applied as one config and now
-- names another id is an error rather than a second bot made by mistake.
ALTER TABLE bot_config_versions ADD COLUMN source_path text;
CREATE INDEX bot_config_versions_applied_path ON bot_config_versions (tenant_id, source_path, created_at)
    WHERE source = 'apply' AND source_path IS NOT NULL;
