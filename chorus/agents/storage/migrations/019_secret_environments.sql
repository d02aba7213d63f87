-- Environment-scoped secrets (issue 9): a secret may belong to one environment ('staging' or 'production');
-- NULL means every environment. A tool call in environment E uses the secret scoped to E, else the unscoped
-- one, so a tenant may hold SHOP_API_KEY once for all and again for staging.
ALTER TABLE secrets ADD COLUMN environment text CHECK (environment IN ('staging', 'production'));
ALTER TABLE secrets DROP CONSTRAINT secrets_tenant_id_name_key;
-- NULLS NOT DISTINCT: at most one unscoped secret per name, as before (Postgres >= 15).
ALTER TABLE secrets ADD CONSTRAINT secrets_tenant_name_environment UNIQUE NULLS NOT DISTINCT (tenant_id, name, environment);

-- The audit trail names which secret of a name an event touched (its scope; NULL for the unscoped one, the
-- only kind before this migration) and, for a tool's use, the environment the call ran in.
ALTER TABLE secret_audit ADD COLUMN environment text;
ALTER TABLE secret_audit ADD COLUMN call_environment text;
DROP INDEX secret_audit_name;
CREATE INDEX secret_audit_name ON secret_audit (tenant_id, secret_name, environment, created_at DESC);
