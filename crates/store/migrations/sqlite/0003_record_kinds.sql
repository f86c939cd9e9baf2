-- Trailmark embedded store, schema 3: the kind index is a table of its own.
--
-- As an index on `records` (schema 1), a record's entry went with its row: a row deleted behind
-- the store's back (its triggers dropped first) vanished from a query by kind, which could not
-- tell. As an append-only table its rows stay, and a query by kind names such a record as
-- missing, as a query by subject does. Writing it costs what the index cost: one b-tree entry
-- per record.
CREATE TABLE record_kinds (
    kind TEXT NOT NULL,
    idx  INTEGER NOT NULL,
    PRIMARY KEY (kind, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER record_kinds_no_update BEFORE UPDATE ON record_kinds BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of record_kinds refused)'); END;
CREATE TRIGGER record_kinds_no_delete BEFORE DELETE ON record_kinds BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of record_kinds refused)'); END;

INSERT INTO record_kinds (kind, idx) SELECT kind, idx FROM records;
DROP INDEX records_kind;
