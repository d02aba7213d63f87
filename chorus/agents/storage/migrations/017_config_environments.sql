-- Environments and staged deploys (issue 9, docs/api.md "Environments and deploys").
--
-- Every config has two environments, staging and production. An API key belongs to one of them, and so does
-- every conversation it starts. An environment with no row here serves the config's current version (what an
-- upload, PATCH, rollback or approval made current), as Chorus always did; its first deploy gives it a row,
-- and from then on only deploys change what it serves.
ALTER TABLE api_keys ADD COLUMN environment text NOT NULL DEFAULT 'production'
    CHECK (environment IN ('staging', 'production'));

-- What an environment serves: its stable version to every new conversation, except the `candidate_percent`
-- of them (by a stable hash of the thread id) that get the candidate of a rollout in progress.
CREATE TABLE config_environments (
    config_id           uuid NOT NULL REFERENCES bot_configs ON DELETE CASCADE,
    environment         text NOT NULL CHECK (environment IN ('staging', 'production')),
    tenant_id           uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    stable_version      integer,
    candidate_version   integer,
    candidate_percent   integer NOT NULL DEFAULT 0 CHECK (candidate_percent BETWEEN 0 AND 100),
    deployment_id       uuid,
    overrides_revision  integer NOT NULL DEFAULT 0,
    -- Eval suites a version must pass before it is deployed here (the eval harness fills the gate).
    required_eval_suites jsonb NOT NULL DEFAULT '[]',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (config_id, environment),
    FOREIGN KEY (config_id, stable_version) REFERENCES bot_config_versions (config_id, version),
    FOREIGN KEY (config_id, candidate_version) REFERENCES bot_config_versions (config_id, version),
    CHECK ((candidate_version IS NULL) = (candidate_percent = 0))
);

-- Per-environment overrides (an RFC 7396 merge patch over whichever version is served there, e.g. a tool's
-- base URL): immutable revisions like versions; a conversation keeps the revision it started with.
CREATE TABLE config_environment_overrides (
    config_id       uuid NOT NULL REFERENCES bot_configs ON DELETE CASCADE,
    environment     text NOT NULL CHECK (environment IN ('staging', 'production')),
    revision        integer NOT NULL CHECK (revision > 0),
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    overrides       jsonb NOT NULL,
    commit_message  text,
    author          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (config_id, environment, revision)
);

-- Deployment history: every deploy, promotion and rollback of an environment, never deleted.
CREATE TABLE config_deployments (
    deployment_id           uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    config_id               uuid NOT NULL REFERENCES bot_configs ON DELETE CASCADE,
    environment             text NOT NULL CHECK (environment IN ('staging', 'production')),
    version                 integer NOT NULL,
    previous_version        integer,
    strategy                text NOT NULL CHECK (strategy IN ('blue_green', 'immediate')),
    rollout_percent         integer NOT NULL CHECK (rollout_percent BETWEEN 1 AND 100),
    auto_rollback           boolean NOT NULL,
    rollback_on_error_rate  double precision CHECK (rollback_on_error_rate BETWEEN 0 AND 1),
    rollback_on_escalation_rate double precision CHECK (rollback_on_escalation_rate BETWEEN 0 AND 1),
    window_seconds          integer NOT NULL CHECK (window_seconds > 0),
    min_turns               integer NOT NULL CHECK (min_turns > 0),
    status                  text NOT NULL
        CHECK (status IN ('rolling_out', 'completed', 'rolled_back', 'superseded')),
    status_reason           text,
    author                  jsonb,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz,
    FOREIGN KEY (config_id, version) REFERENCES bot_config_versions (config_id, version)
);
CREATE INDEX config_deployments_config ON config_deployments (config_id, created_at DESC);
CREATE INDEX config_deployments_rolling ON config_deployments (status) WHERE status = 'rolling_out';

-- A conversation's environment and the overrides revision it started with; its runs carry both, so the graph
-- that executes them is the one the conversation began with.
ALTER TABLE threads ADD COLUMN environment text NOT NULL DEFAULT 'production'
    CHECK (environment IN ('staging', 'production'));
ALTER TABLE threads ADD COLUMN overrides_revision integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN environment text NOT NULL DEFAULT 'production'
    CHECK (environment IN ('staging', 'production'));
ALTER TABLE runs ADD COLUMN overrides_revision integer NOT NULL DEFAULT 0;
-- Per-version live metrics read runs by version and time.
CREATE INDEX runs_assistant_version ON runs (assistant_id, config_version, created_at);
