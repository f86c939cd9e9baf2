-- Trailmark PostgreSQL store, schema 2: the kind index is a table of its own.
--
-- As an index on `records` (schema 1), a record's entry went with its row: a row deleted behind
-- the store's back (by a role able to set the triggers aside) vanished from a query by kind,
-- which could not tell. As an append-only table its rows stay, and a query by kind names such a
-- record as missing, as a query by subject does. The writer fills it in the statement that
-- inserts the records.
--
-- A service role set up as 0001 describes needs INSERT and SELECT on the new table, for example,
-- as the owner: GRANT SELECT, INSERT ON record_kinds TO trailmark_service;
CREATE TABLE record_kinds (
    kind text NOT NULL,
    idx  bigint NOT NULL,
    PRIMARY KEY (kind, idx)
);
CREATE TRIGGER record_kinds_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON record_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_change('the log is append-only');
ALTER TABLE record_kinds ENABLE ALWAYS TRIGGER record_kinds_append_only;
REVOKE UPDATE, DELETE, TRUNCATE ON record_kinds FROM PUBLIC;

INSERT INTO record_kinds (kind, idx) SELECT kind, idx FROM records;
DROP INDEX records_kind;
