-- Trailmark embedded store, schema 2: the subject index is written an epoch at a time.
--
-- No table changes. From this version on, `record_subjects` holds the rows of an epoch
-- (4,096 records, `idx >> 12`) from the transaction that appends the epoch's last record on:
-- all of them at once, sorted. The open epoch is indexed from its records, in memory. A build
-- of schema 1 would read an open epoch's subjects from `record_subjects` and find none, so
-- this version number is what keeps such a build away from a store written this way.
SELECT 1;
