-- Trailmark embedded store, schema 1: the evidence log.
-- Every table here is append-only: triggers abort UPDATE and DELETE, so even a bug (or a person
-- with the sqlite3 shell who does not first drop the triggers) cannot rewrite history.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per log entry. `leaf` is the exact signed byte string (RFC 8785 JSON of the v1 wire
-- record); the other columns are derived from it for querying.
CREATE TABLE records (
    idx         INTEGER PRIMARY KEY,
    leaf        BLOB NOT NULL,
    leaf_hash   BLOB NOT NULL,
    kind        TEXT NOT NULL,
    recorded_us INTEGER NOT NULL
) STRICT;
-- No index on recorded_us: the writer never lets it decrease, so time filters binary-search
-- the rowid order instead of paying an index insertion per record.
CREATE INDEX records_kind ON records (kind, idx);

-- Idempotency keys, only for the records that carry one.
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    idx INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Subjects of each record (rel = '') and the targets of its links (rel = the link's rel).
-- Keyed by epoch (idx >> 12) first: inserts then land in the current epoch's small subtree
-- instead of at random places in one huge b-tree (which cost a page write per record), and a
-- lookup seeks once per epoch. See ARCHITECTURE.md.
CREATE TABLE record_subjects (
    epoch INTEGER NOT NULL,
    type  TEXT NOT NULL,
    id    TEXT NOT NULL,
    idx   INTEGER NOT NULL,
    rel   TEXT NOT NULL,
    PRIMARY KEY (epoch, type, id, idx, rel)
) STRICT, WITHOUT ROWID;

-- Hashes of complete perfect subtrees at every even level >= 2 (level 0 is records.leaf_hash,
-- odd levels are one hash away). A third of a row per record buys O(log n) proofs.
CREATE TABLE tree_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- A signed C2SP checkpoint for every committed batch.
CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    note      TEXT NOT NULL,
    signed_ms INTEGER NOT NULL
) STRICT;

-- Large payloads (and later raw inputs), addressed by SHA-256 of their bytes.
CREATE TABLE blobs (
    digest BLOB PRIMARY KEY,
    bytes  BLOB NOT NULL
) STRICT;

CREATE TRIGGER records_no_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of records refused)'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of records refused)'); END;
CREATE TRIGGER record_subjects_no_update BEFORE UPDATE ON record_subjects BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of record_subjects refused)'); END;
CREATE TRIGGER record_subjects_no_delete BEFORE DELETE ON record_subjects BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of record_subjects refused)'); END;
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of tree_nodes refused)'); END;
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of tree_nodes refused)'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of checkpoints refused)'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of checkpoints refused)'); END;
CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of blobs refused)'); END;
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of blobs refused)'); END;
CREATE TRIGGER idempotency_no_update BEFORE UPDATE ON idempotency BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of idempotency refused)'); END;
CREATE TRIGGER idempotency_no_delete BEFORE DELETE ON idempotency BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of idempotency refused)'); END;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'trailmark: meta is write-once (UPDATE refused)'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta BEGIN SELECT RAISE(ABORT, 'trailmark: meta is write-once (DELETE refused)'); END;
