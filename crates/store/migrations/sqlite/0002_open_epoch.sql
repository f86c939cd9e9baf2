-- Trailmark embedded store, schema 2: the subject index is written an epoch at a time.
--
-- From this version on, `record_subjects` gets an epoch's rows (4,096 records, `idx >> 12`)
-- only once the epoch is complete, sorted, a slice per commit; the commit that writes the last
-- slice records the epoch here. Rows of epochs not recorded here are never read: the records
-- of those epochs are indexed in memory. A build of schema 1 would read every epoch from
-- `record_subjects` alone, so this version number is also what keeps it away from such a store.
CREATE TABLE subject_epochs (
    epoch INTEGER PRIMARY KEY
) STRICT;

CREATE TRIGGER subject_epochs_no_update BEFORE UPDATE ON subject_epochs BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (UPDATE of subject_epochs refused)'); END;
CREATE TRIGGER subject_epochs_no_delete BEFORE DELETE ON subject_epochs BEGIN SELECT RAISE(ABORT, 'trailmark: the log is append-only (DELETE of subject_epochs refused)'); END;

-- Schema 1 indexed every record as it was appended: every complete epoch has all its rows.
INSERT INTO subject_epochs (epoch)
WITH RECURSIVE complete(n) AS (SELECT coalesce(max(size), 0) >> 12 FROM checkpoints),
     e(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM e WHERE n + 1 < (SELECT n FROM complete))
SELECT n FROM e WHERE n < (SELECT n FROM complete);
