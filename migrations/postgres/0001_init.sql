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

-- Writes to the catalog are serialised: every statement that changes
-- `media` first takes one transaction-scoped advisory lock ("mgcatalg"),
-- before it touches a row. Catalog writes are short (a save's row, a
-- delete's mark), so this costs little; in exchange no two writers ever
-- wait on each other's rows in opposite orders (a batch upsert beside a
-- delete), and the counters below are kept without deadlocks.
CREATE FUNCTION media_write_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7883378942950861927);
    RETURN NULL;
END
$$;
CREATE TRIGGER media_write_lock BEFORE INSERT OR UPDATE OR DELETE ON media
    FOR EACH STATEMENT EXECUTE FUNCTION media_write_lock();

-- The number of ready rows per kind, kept by triggers in the same
-- transaction as the change, so a listing's `total` without a search costs
-- one small read instead of counting every row. The triggers run once per
-- statement (a batch insert updates each counter once); a statement that
-- leaves the counts as they were (reconcile's upsert of a known row) does
-- not touch them.
CREATE TABLE media_counts (
    kind text PRIMARY KEY,
    n    bigint NOT NULL
);
CREATE FUNCTION media_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO media_counts (kind, n)
            SELECT kind, count(*) FROM new_rows WHERE state = 'ready' GROUP BY kind
            ON CONFLICT (kind) DO UPDATE SET n = media_counts.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO media_counts (kind, n)
            SELECT kind, -count(*) FROM old_rows WHERE state = 'ready' GROUP BY kind
            ON CONFLICT (kind) DO UPDATE SET n = media_counts.n + excluded.n;
    ELSE
        INSERT INTO media_counts (kind, n)
            SELECT kind, sum(d) FROM (
                SELECT kind, 1 AS d FROM new_rows WHERE state = 'ready'
                UNION ALL
                SELECT kind, -1 AS d FROM old_rows WHERE state = 'ready'
            ) AS changes
            GROUP BY kind HAVING sum(d) <> 0
            ON CONFLICT (kind) DO UPDATE SET n = media_counts.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER media_count_insert AFTER INSERT ON media
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION media_count_rows();
CREATE TRIGGER media_count_update AFTER UPDATE ON media
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION media_count_rows();
CREATE TRIGGER media_count_delete AFTER DELETE ON media
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION media_count_rows();

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
