-- Trailmark PostgreSQL store, schema 1: the evidence log, shared by every `trailmark serve`
-- instance that connects to this database.
--
-- Every table here is append-only, enforced twice:
--
-- 1. Triggers. A statement-level trigger on each table refuses UPDATE, DELETE and TRUNCATE, so
--    even a statement that matches no row is refused, and even the owner is refused. They are
--    ENABLE ALWAYS, so `session_replication_role = replica` does not silence them either. Only
--    a role that may ALTER the table (its owner, a superuser) can take a trigger away, and what
--    such a role then changes is found by `trailmark verify` against the signed checkpoints.
--
-- 2. Privileges. UPDATE, DELETE and TRUNCATE are revoked from PUBLIC below. The service should
--    connect as a role that owns nothing here and holds only SELECT and INSERT on these tables
--    (there are no sequences to grant USAGE on: indices come from the log writer, under its
--    advisory lock). Such a role is refused UPDATE/DELETE/TRUNCATE by permission before any
--    trigger runs, and cannot drop the triggers. Migrations (`PgStore::create`, or the first
--    open after an upgrade) run as the owner. For example, as the owner:
--
--        CREATE ROLE trailmark_service LOGIN PASSWORD '...';
--        GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO trailmark_service;
--
-- Column layout mirrors the SQLite schema, so both backends store the same rows and
-- `verify_log` reads them the same way.

CREATE FUNCTION trailmark_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trailmark: % (% of % refused)', TG_ARGV[0], TG_OP, TG_TABLE_NAME;
END
$$;

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One row per log entry. `leaf` is the exact signed byte string (RFC 8785 JSON of the v1 wire
-- record); the other columns are derived from it for querying.
CREATE TABLE records (
    idx         bigint PRIMARY KEY,
    leaf        bytea NOT NULL,
    leaf_hash   bytea NOT NULL,
    kind        text NOT NULL,
    recorded_us bigint NOT NULL
);
CREATE INDEX records_kind ON records (kind, idx);
-- The writer never lets recorded_us decrease, so this index only grows at its right edge (no
-- random page writes), and a time filter is one range of it.
CREATE INDEX records_recorded ON records (recorded_us);

-- Idempotency keys, only for the records that carry one.
CREATE TABLE idempotency (
    key text PRIMARY KEY,
    idx bigint NOT NULL
);

-- Subjects of each record (rel = '') and the targets of its links (rel = the link's rel).
-- Keyed subject first and index last, so "records about X, in index order, after N" is one
-- range scan. (SQLite's epoch prefix works around its page layout; PostgreSQL's buffer cache
-- absorbs scattered b-tree inserts instead.)
CREATE TABLE record_subjects (
    type text NOT NULL,
    id   text NOT NULL,
    rel  text NOT NULL,
    idx  bigint NOT NULL,
    PRIMARY KEY (type, id, rel, idx)
);

-- Hashes of complete perfect subtrees at every even level >= 2 (level 0 is records.leaf_hash,
-- odd levels are one hash away). A third of a row per record buys O(log n) proofs.
CREATE TABLE tree_nodes (
    level smallint NOT NULL,
    idx   bigint NOT NULL,
    hash  bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- A signed C2SP checkpoint for every committed batch. The primary key is also the last line of
-- defence against a fork: one size can never have two roots.
CREATE TABLE checkpoints (
    size      bigint PRIMARY KEY,
    root      bytea NOT NULL,
    note      text NOT NULL,
    signed_ms bigint NOT NULL
);

-- Large payloads and raw inputs, addressed by SHA-256 of their bytes.
CREATE TABLE blobs (
    digest bytea PRIMARY KEY,
    bytes  bytea NOT NULL
);

CREATE TRIGGER meta_write_once BEFORE UPDATE OR DELETE OR TRUNCATE ON meta
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('meta is write-once');
CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
CREATE TRIGGER idempotency_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON idempotency
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
CREATE TRIGGER record_subjects_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON record_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
CREATE TRIGGER tree_nodes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
CREATE TRIGGER blobs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON blobs
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');

ALTER TABLE meta ENABLE ALWAYS TRIGGER meta_write_once;
ALTER TABLE records ENABLE ALWAYS TRIGGER records_append_only;
ALTER TABLE idempotency ENABLE ALWAYS TRIGGER idempotency_append_only;
ALTER TABLE record_subjects ENABLE ALWAYS TRIGGER record_subjects_append_only;
ALTER TABLE tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_append_only;
ALTER TABLE checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
ALTER TABLE blobs ENABLE ALWAYS TRIGGER blobs_append_only;

REVOKE UPDATE, DELETE, TRUNCATE
    ON meta, records, idempotency, record_subjects, tree_nodes, checkpoints, blobs
    FROM PUBLIC;
