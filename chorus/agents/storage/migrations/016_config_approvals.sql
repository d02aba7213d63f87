-- Risk-classified changes (issue 9, docs/api.md "Changes and approval"): a PATCH or visual update records its
-- classification on the version it makes; one that needs approval waits as `pending_approval` (it is not the
-- config's current version) until its approvers have signed, or is `rejected` for good. Versions made before
-- this, and every upload, apply and rollback, are `approved` (current or not is bot_configs.latest_version).
ALTER TABLE bot_config_versions
    ADD COLUMN status text NOT NULL DEFAULT 'approved'
        CHECK (status IN ('approved', 'pending_approval', 'rejected')),
    ADD COLUMN risk_level text CHECK (risk_level IN ('low', 'medium', 'high')),
    ADD COLUMN change_classification jsonb,
    -- The current version the change was made on: a pending version becomes current only on that base.
    ADD COLUMN based_on integer;

-- Who approved or rejected a version, in which role, and why. A key signs a version once.
CREATE TABLE bot_config_approvals (
    approval_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    config_id       uuid NOT NULL,
    version         integer NOT NULL,
    decision        text NOT NULL CHECK (decision IN ('approve', 'reject')),
    key_id          uuid,
    key_name        text,
    role            text NOT NULL,
    comment         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (config_id, version) REFERENCES bot_config_versions (config_id, version) ON DELETE CASCADE,
    UNIQUE (config_id, version, key_id)
);
