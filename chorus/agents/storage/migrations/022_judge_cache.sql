-- The eval judge's answers (issue 11, docs/evals.md "The judge cache"), tenant-scoped like every table: a
-- rerun of the same execution asks the judge model nothing. `key` is the SHA-256 of everything that can change
-- an answer: the metric, its step and prompt version, the answer's JSON Schema, the judge's provider, model and
-- base URL, and the full prompt (which holds every text judged). Only answers that passed the schema are kept.
CREATE TABLE judge_cache (
    tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    key         char(64) NOT NULL,
    metric      text NOT NULL,
    step        text NOT NULL,
    judge_model text NOT NULL,
    answer      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
