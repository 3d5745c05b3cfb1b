-- media-gen's shared catalog, jobs and usage ledger (issue 15). Applied once,
-- in one transaction, by src/store/postgres/migrate.rs; never edit an applied
-- migration: add the next file instead.
--
-- Times are timestamptz at millisecond precision (the application truncates
-- them), names sort bytewise (COLLATE "C", as SQLite's BINARY does), whatever
-- the database's own collation.

-- Catalog: one row per file; only `ready` rows are visible to reads, a delete
-- first marks its row `deleting` so an interrupted delete can be finished.
-- Listings read ready rows in one of three orders, optionally of one kind:
-- each order has a partial index ending on the primary key, so a page is an
-- index walk at any library size.
CREATE TABLE media (
    filename    text COLLATE "C" PRIMARY KEY,
    kind        text NOT NULL,
    mime_type   text NOT NULL,
    size_bytes  bigint NOT NULL,
    width       bigint,
    height      bigint,
    created     timestamptz NOT NULL,
    prompt      text,
    model       text,
    source      text COLLATE "C",
    metadata    jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'deleting'))
);
CREATE INDEX media_ready_date ON media (created, filename) WHERE state = 'ready';
CREATE INDEX media_ready_size ON media (size_bytes, filename) WHERE state = 'ready';
CREATE INDEX media_ready_name ON media (filename) WHERE state = 'ready';
CREATE INDEX media_ready_kind_date ON media (kind, created, filename) WHERE state = 'ready';
CREATE INDEX media_ready_kind_size ON media (kind, size_bytes, filename) WHERE state = 'ready';
CREATE INDEX media_ready_kind_name ON media (kind, filename) WHERE state = 'ready';
CREATE INDEX media_deleting ON media (filename) WHERE state <> 'ready';
CREATE INDEX media_source ON media (source, created, filename) WHERE source IS NOT NULL;

-- Prompt search: a case-insensitive substring (ILIKE), served by a trigram
-- index for three characters or more.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX media_prompt_trgm ON media USING gin (prompt gin_trgm_ops);

-- Jobs: the whole job as JSON beside the columns its queries use, and the
-- lease of the process that drives it (none, or until `lease_until`).
CREATE TABLE jobs (
    id          text COLLATE "C" PRIMARY KEY,
    state       text NOT NULL,
    created     timestamptz NOT NULL,
    body        jsonb NOT NULL,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX jobs_created ON jobs (created, id);
CREATE INDEX jobs_active ON jobs (created, id) WHERE state IN ('queued', 'running');

-- The usage ledger: one row per backend call; sums run over time ranges.
CREATE TABLE usage (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time         timestamptz NOT NULL,
    model        text NOT NULL,
    operation    text NOT NULL,
    kind         text NOT NULL,
    size         text,
    seconds      double precision,
    estimate_usd double precision,
    cost_usd     double precision NOT NULL,
    outcome      text NOT NULL,
    error        text,
    job_id       text
);
CREATE INDEX usage_time ON usage (time);
CREATE INDEX usage_job ON usage (job_id) WHERE job_id IS NOT NULL;

-- Budget holds: amounts reserved by calls under way, counted against the
-- caps until they are settled or expire.
CREATE TABLE usage_holds (
    key     text PRIMARY KEY,
    usd     double precision NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX usage_holds_expires ON usage_holds (expires);
