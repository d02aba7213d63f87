-- The seed's roles (001 §6): organization_admin (what `admin` was, renamed), config_manager, developer,
-- viewer, platform_engineer. Keys keep their hash, so every existing key keeps working; `admin` stays an
-- accepted alias wherever a role is named (docs/decisions.md).
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
UPDATE api_keys SET role = 'organization_admin' WHERE role = 'admin';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('organization_admin', 'config_manager', 'developer', 'viewer', 'platform_engineer'));
