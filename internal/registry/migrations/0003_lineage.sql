-- 0003_lineage: what a version was made from and by, beyond the hashes of
-- 0001: the spec text, the git commit of the spec's work tree, the datasets
-- (JSON list of {role, uri, sha256, rows}), the trainer's version, the
-- Temporal run ID of the pipeline run (run_id holds its workflow ID), and the
-- aliases the spec says need an approval before they point at the version
-- (JSON list of alias names).

ALTER TABLE versions ADD COLUMN spec_text TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN git_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN git_dirty BIGINT NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN datasets TEXT NOT NULL DEFAULT '[]';
ALTER TABLE versions ADD COLUMN trainer_version TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN workflow_run_id TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN require_approval TEXT NOT NULL DEFAULT '[]';
