-- 0002_status_report: a version's status is "ready" (may be aliased and
-- served) or "rejected" (kept for the record; failed a gate), and it may carry
-- the gate's report as JSON text.

ALTER TABLE versions ADD COLUMN report TEXT NOT NULL DEFAULT '';

UPDATE versions SET status = 'ready' WHERE status = 'registered';
