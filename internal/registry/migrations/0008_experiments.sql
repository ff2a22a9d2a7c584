-- 0008_experiments: shadows and A/B experiments.
--
-- A deployment may mirror its traffic to a shadow version, or split it
-- between an experiment's variants by key instead of stable and canary;
-- the server restores both. experiment holds the serving.Experiment JSON
-- ('' without one).
--
-- experiments keeps every A/B experiment started with kiln experiments:
-- its definition (JSON: key, variants, metric, margins), who started it
-- and when, and when it stopped and how ('' while it runs).

ALTER TABLE deployments ADD COLUMN shadow_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN shadow_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN experiment TEXT NOT NULL DEFAULT '';

CREATE TABLE experiments (
    name        TEXT NOT NULL PRIMARY KEY,
    model       TEXT NOT NULL,
    definition  TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    stopped_at  TEXT NOT NULL,
    outcome     TEXT NOT NULL
);
