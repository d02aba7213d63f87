-- Knowledge base (seed 001 §17): namespaces, documents, chunks with embeddings (pgvector), full-text
-- and trigram indexes, jobs (ingestion, FAQ import, re-embed), FAQs with versions and search logs.
-- Every row carries tenant_id and namespace; nothing is shared across tenants.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE kb_namespaces (
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    namespace        text NOT NULL,
    embedding_model  text NOT NULL,
    dimension        integer NOT NULL CHECK (dimension > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, namespace)
);

CREATE TABLE kb_documents (
    tenant_id          uuid NOT NULL,
    namespace          text NOT NULL,
    document_id        text NOT NULL,
    title              text NOT NULL,
    source             text NOT NULL,
    content_type       text NOT NULL,
    content_sha256     text NOT NULL,
    bytes              integer NOT NULL,
    metadata           jsonb NOT NULL DEFAULT '{}',
    chunking_strategy  text NOT NULL,
    chunk_size         integer NOT NULL,
    chunk_count        integer NOT NULL,
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, namespace, document_id),
    FOREIGN KEY (tenant_id, namespace) REFERENCES kb_namespaces ON DELETE CASCADE
);

CREATE TABLE kb_chunks (
    chunk_id       uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    namespace      text NOT NULL,
    document_id    text NOT NULL,
    ordinal        integer NOT NULL,
    start_line     integer,
    end_line       integer,
    page           integer,
    heading        text NOT NULL DEFAULT '',
    content        text NOT NULL,
    -- Filterable copies of the document's metadata, so a filtered search stays one index scan.
    document_type  text,
    category       text,
    document_date  date,
    metadata       jsonb NOT NULL DEFAULT '{}',
    dims           integer NOT NULL,
    embedding      vector NOT NULL,
    tsv            tsvector GENERATED ALWAYS AS (
                       setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', content), 'B')
                   ) STORED,
    FOREIGN KEY (tenant_id, namespace, document_id) REFERENCES kb_documents ON DELETE CASCADE
);
CREATE INDEX kb_chunks_document ON kb_chunks (tenant_id, namespace, document_id, ordinal);
CREATE INDEX kb_chunks_tsv ON kb_chunks USING gin (tsv);
CREATE INDEX kb_chunks_heading_trgm ON kb_chunks USING gin (heading gin_trgm_ops);
-- One HNSW index per supported embedding width (an index needs a fixed dimension).
CREATE INDEX kb_chunks_hnsw_384 ON kb_chunks USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;
CREATE INDEX kb_chunks_hnsw_1536 ON kb_chunks USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dims = 1536;

CREATE TABLE kb_jobs (
    job_id                uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    namespace             text NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('ingest', 'faq_import', 'reembed')),
    status                text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    document_id           text,
    filename              text,
    chunks_total          integer NOT NULL DEFAULT 0,
    chunks_processed      integer NOT NULL DEFAULT 0,
    embeddings_generated  integer NOT NULL DEFAULT 0,
    total_rows            integer NOT NULL DEFAULT 0,
    result                jsonb NOT NULL DEFAULT '{}',
    error                 text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    started_at            timestamptz,
    completed_at          timestamptz,
    heartbeat_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_jobs_tenant ON kb_jobs (tenant_id, created_at DESC);
CREATE INDEX kb_jobs_active ON kb_jobs (heartbeat_at) WHERE status IN ('queued', 'processing');

CREATE TABLE faqs (
    faq_id               uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    namespace            text NOT NULL,
    category             text,
    question             text NOT NULL,
    alternate_questions  text[] NOT NULL DEFAULT '{}',
    answer               text NOT NULL,
    tags                 text[] NOT NULL DEFAULT '{}',
    version              integer NOT NULL DEFAULT 1,
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    created_by           uuid,
    updated_by           uuid,
    FOREIGN KEY (tenant_id, namespace) REFERENCES kb_namespaces ON DELETE CASCADE
);
CREATE INDEX faqs_namespace ON faqs (tenant_id, namespace, category);
CREATE INDEX faqs_tags ON faqs USING gin (tags);
CREATE UNIQUE INDEX faqs_question ON faqs (tenant_id, namespace, lower(question));

-- One vector per phrasing (the question, each alternate question) and one for the answer.
CREATE TABLE faq_vectors (
    vector_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    faq_id     uuid NOT NULL REFERENCES faqs ON DELETE CASCADE,
    tenant_id  uuid NOT NULL,
    namespace  text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('question', 'alternate_question', 'answer')),
    text       text NOT NULL,
    dims       integer NOT NULL,
    embedding  vector NOT NULL
);
CREATE INDEX faq_vectors_namespace ON faq_vectors (tenant_id, namespace);
CREATE INDEX faq_vectors_faq ON faq_vectors (faq_id);

CREATE TABLE faq_versions (
    version_id           uuid PRIMARY KEY,
    faq_id               uuid NOT NULL REFERENCES faqs ON DELETE CASCADE,
    tenant_id            uuid NOT NULL,
    version              integer NOT NULL,
    question             text NOT NULL,
    answer               text NOT NULL,
    alternate_questions  text[] NOT NULL DEFAULT '{}',
    category             text,
    tags                 text[] NOT NULL DEFAULT '{}',
    changed_by           uuid,
    changed_at           timestamptz NOT NULL DEFAULT now(),
    change_reason        text,
    UNIQUE (faq_id, version)
);

CREATE TABLE faq_search_logs (
    search_log_id     uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    namespace         text NOT NULL,
    query             text NOT NULL,
    faq_id            uuid REFERENCES faqs ON DELETE SET NULL,
    confidence_score  real,
    matched_via       text,
    conversation_id   text,
    searched_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faq_search_logs_namespace ON faq_search_logs (tenant_id, namespace, searched_at DESC);
