-- Environment overrides are classified like any config change (docs/api.md "Environments and deploys"): a
-- revision whose risk needs approval waits for it (`pending_approval`, not served) and becomes the
-- environment's overrides with its last approval, if it was made on the overrides still in force. Who signed
-- (key, name, role, comment, when) is kept in `approvals`.
ALTER TABLE config_environment_overrides
    ADD COLUMN status text NOT NULL DEFAULT 'approved'
        CHECK (status IN ('approved', 'pending_approval', 'rejected')),
    ADD COLUMN risk_level text CHECK (risk_level IN ('low', 'medium', 'high')),
    ADD COLUMN classification jsonb,
    ADD COLUMN based_on integer NOT NULL DEFAULT 0,
    ADD COLUMN approvals jsonb NOT NULL DEFAULT '[]';
