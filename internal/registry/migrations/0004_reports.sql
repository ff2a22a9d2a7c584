-- 0004_reports: what operating models records beside the versions.
--
-- reports indexes batch reports: one row per (pipeline, step, run_key), where
-- run_key is the run's logical date ("2026-12-02") or logical time; re-running
-- a date replaces its row (and its files). trend_point is the report's point
-- of the trend (JSON), so a later report reads the trend without opening files.
--
-- alerts are judgements raised without a run, e.g. a missing report past its
-- deadline: one per (schedule, run_key, kind).
--
-- backfills record `kiln schedules backfill` requests and the nominal times
-- they asked Temporal to run, so that a run started by the schedule can tell
-- it is part of a backfill (Temporal cannot tag backfill runs).

CREATE TABLE reports (
    pipeline         TEXT NOT NULL,
    step             TEXT NOT NULL,
    run_key          TEXT NOT NULL,
    schedule         TEXT NOT NULL,
    model            TEXT NOT NULL,
    version          BIGINT NOT NULL,
    workflow_id      TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    uri              TEXT NOT NULL,
    row_count        BIGINT NOT NULL,
    columns_compared BIGINT NOT NULL,
    drifted_columns  BIGINT NOT NULL,
    dataset_drift    BIGINT NOT NULL,
    prediction_drift BIGINT NOT NULL,
    trend_point      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (pipeline, step, run_key)
);

CREATE INDEX reports_model ON reports (model, run_key);
CREATE INDEX reports_schedule ON reports (schedule, run_key);

CREATE TABLE alerts (
    id          BIGINT NOT NULL PRIMARY KEY,
    schedule    TEXT NOT NULL,
    run_key     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    resolved_at TEXT NOT NULL DEFAULT '',
    delivery    TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX alerts_key ON alerts (schedule, run_key, kind);

CREATE TABLE backfills (
    id           BIGINT NOT NULL PRIMARY KEY,
    schedule     TEXT NOT NULL,
    run_keys     TEXT NOT NULL,
    reprocess    TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL
);

CREATE TABLE backfill_runs (
    schedule    TEXT NOT NULL,
    nominal     TEXT NOT NULL,
    backfill_id BIGINT NOT NULL,
    PRIMARY KEY (schedule, nominal, backfill_id)
);

INSERT INTO counters (name, value) VALUES ('alerts', 0);
INSERT INTO counters (name, value) VALUES ('backfills', 0);
